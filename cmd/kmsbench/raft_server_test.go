package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRaftServerAppliesCreateKeyThroughEveryNode drives the Raft baseline
// behind gRPC+TLS with CreateKey spread over its three endpoints, so two
// thirds of the calls are forwarded: every call succeeds.
func TestRaftServerAppliesCreateKeyThroughEveryNode(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir) // to check that the server cleans up after itself
	t.Cleanup(func() {      // runs after the server has stopped
		if left, _ := filepath.Glob(filepath.Join(dir, "kmsbench-raft-*")); len(left) != 0 {
			t.Errorf("left behind %v", left)
		}
	})
	serverDir, clientDir := issueBenchCerts(t, dir)
	endpoints := serveInBackground(t, 30*time.Second, "raft-server", "-nodes", "3", "-tls-dir", serverDir)
	if n := len(strings.Split(endpoints, ",")); n != 3 {
		t.Fatalf("ready line names %d endpoints, want 3: %q", n, endpoints)
	}

	r, code, errOut := runLoadJSON(t, "-endpoints", endpoints, "-tls-dir", clientDir, "-op", "create-key", "-concurrency", "6")
	if code != 0 || r.Ops == 0 || r.Errors != 0 {
		t.Errorf("exit %d ops %d errors %d (%s): %s", code, r.Ops, r.Errors, r.FirstError, errOut)
	}
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// TestRaftServerAppliesCreateKeyThroughEveryNode drives the Raft baseline
// behind gRPC+TLS, one process per node, with CreateKey spread over its
// three endpoints, so two thirds of the calls are forwarded: every call
// succeeds, a forwarded call is never forwarded again, and no process or
// directory outlives the server.
func TestRaftServerAppliesCreateKeyThroughEveryNode(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(childEnv, "1") // the nodes are this test binary
	t.Setenv("TMPDIR", dir) // to check that the server cleans up after itself
	t.Cleanup(func() {      // runs after the server has stopped
		expectRaftDirsRemoved(t, dir)
		expectNoProcessUnder(t, dir)
	})
	serverDir, clientDir := issueBenchCerts(t, dir)
	endpoints := serveInBackground(t, 30*time.Second, "raft-server", "-nodes", "3", "-tls-dir", serverDir)
	if n := len(strings.Split(endpoints, ",")); n != 3 {
		t.Fatalf("ready line names %d endpoints, want 3: %q", n, endpoints)
	}

	// Each node takes a call; two of the three forward it. A call marked as
	// forwarded is applied only by the leader.
	var applied, refused int
	for _, addr := range strings.Split(endpoints, ",") {
		conn, err := nodetest.DialTLS(addr, clientDir)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := kmspb.NewKMSClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.CreateKey(ctx, &kmspb.CreateKeyRequest{}); err != nil {
			t.Errorf("CreateKey through %s: %v", addr, err)
		}
		_, err = client.CreateKey(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), &kmspb.CreateKeyRequest{})
		switch status.Code(err) {
		case codes.OK:
			applied++
		case codes.Unavailable:
			refused++
		default:
			t.Errorf("forwarded CreateKey through %s: %v", addr, err)
		}
	}
	if applied != 1 || refused != 2 {
		t.Errorf("calls marked as forwarded: %d applied, %d refused; want the leader's alone applied", applied, refused)
	}

	r, code, errOut := runLoadJSON(t, "-endpoints", endpoints, "-tls-dir", clientDir, "-op", "create-key", "-concurrency", "6")
	if code != 0 || r.Ops == 0 || r.Errors != 0 {
		t.Errorf("exit %d ops %d errors %d (%s): %s", code, r.Ops, r.Errors, r.FirstError, errOut)
	}
}

// expectNoProcessUnder fails if a process still runs with dir in its
// command line (Linux; elsewhere it checks nothing).
func expectNoProcessUnder(t *testing.T, dir string) {
	t.Helper()
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		cmdline, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(cmdline), dir) {
			t.Errorf("still running: %s", strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
}

// Bad flags of the Raft servers exit 2 and name the flag, before anything
// starts.
func TestRaftServerFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"raft-server", "-nodes", "0", "-tls-dir", "x"}, "-nodes must be at least 1"},
		{[]string{"raft-server", "-nodes", "3"}, "-tls-dir is required"},
		{[]string{"raft-server", "-tls-dir", "x", "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"raft-node", "-index", "3", "-nodes", "3", "-dir", "d", "-tls-dir", "x"}, "-index 3: must be from 0 to -nodes minus 1"},
		{[]string{"raft-node", "-tls-dir", "x"}, "-dir is required"},
		{[]string{"raft-node", "-dir", "d"}, "-tls-dir is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := runArgs(context.Background(), tc.args, &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

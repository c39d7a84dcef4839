package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	if pids := processesUnder(dir); len(pids) != 3 {
		t.Errorf("%d processes run the nodes, want one each", len(pids))
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

// processesUnder returns the pids of the processes with dir in their
// command line (Linux; elsewhere none).
func processesUnder(dir string) []int {
	var pids []int
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		cmdline, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func expectNoProcessUnder(t *testing.T, dir string) {
	t.Helper()
	if pids := processesUnder(dir); len(pids) != 0 {
		t.Errorf("processes %v still run with %s in their command line", pids, dir)
	}
}

// A node that dies ends raft-server at once, with an error naming it, and
// the others are stopped: a benchmark never runs on a cluster short of a
// node without saying so.
func TestRaftServerStopsWhenANodeDies(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(childEnv, "1")
	t.Setenv("TMPDIR", dir)
	serverDir, _ := issueBenchCerts(t, dir)
	s := startInBackground(t, 30*time.Second, "raft-server", "-nodes", "3", "-tls-dir", serverDir)
	pids := processesUnder(dir)
	if len(pids) != 3 {
		t.Fatalf("%d processes run the nodes, want 3", len(pids))
	}
	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		if s.code != 1 || !strings.Contains(s.stderr.String(), "exited: signal: killed") {
			t.Errorf("exit %d: %s", s.code, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("raft-server still runs after one of its nodes died")
	}
	expectNoProcessUnder(t, dir)
	expectRaftDirsRemoved(t, dir)
}

// Bad flags of the Raft servers exit 2 and name the flag, and a missing
// certificate exits 1 and names the file, before anything is created or
// started.
func TestRaftServerFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"raft-server", "-nodes", "0", "-tls-dir", "x"}, 2, "-nodes must be at least 1"},
		{[]string{"raft-server", "-nodes", "16", "-tls-dir", "x"}, 2, "-nodes must be at most 15"},
		{[]string{"raft-server", "-nodes", "3"}, 2, "-tls-dir is required"},
		{[]string{"raft-server", "-tls-dir", "x", "-timeout", "0s"}, 2, "-timeout must be positive"},
		{[]string{"raft-server", "-tls-dir", "no-such-dir"}, 1, "no-such-dir/node.crt"},
		{[]string{"raft-node", "-index", "3", "-nodes", "3", "-dir", "d", "-tls-dir", "x"}, 2, "-index 3: must be from 0 to -nodes minus 1"},
		{[]string{"raft-node", "-tls-dir", "x"}, 2, "-dir is required"},
		{[]string{"raft-node", "-dir", "d"}, 2, "-tls-dir is required"},
		{[]string{"raft-server", "-tls-dir", "x", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"raft-node", "-dir", "d", "-tls-dir", "x", "extra"}, 2, `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			var stdout, stderr strings.Builder
			code := runArgs(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("created %v", left)
			}
		})
	}
}

func TestRaftNodeThatCannotOpenItsLogExitsWithTheReason(t *testing.T) {
	serverDir, _ := issueBenchCerts(t, t.TempDir())
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := runArgs(context.Background(), []string{"raft-node", "-dir", filepath.Join(notADir, "node1"), "-tls-dir", serverDir},
		&stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "not a directory") {
		t.Errorf("exit %d, stderr %q; want 1 and the reason", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("announced %q though it never listened", stdout.String())
	}
}

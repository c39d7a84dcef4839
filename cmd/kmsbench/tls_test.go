package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/pki"
)

// childEnv makes the test binary run kmsbench itself, so that raft-server
// can start its raft-node processes from a test.
const childEnv = "TRENT_KMSBENCH_TEST_CHILD"

// TestMain keeps a TRENT_TLS_DIR from the developer's shell away from tests
// that talk plaintext to fake servers.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runArgs(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Unsetenv(tlsDirEnv)
	os.Exit(m.Run())
}

// TestBaselineServerServesMutualTLS: with -tls-dir the baseline is "bare
// gRPC with TLS", as Trent is measured with it; a client without the
// certificate gets nothing.
func TestBaselineServerServesMutualTLS(t *testing.T) {
	t.Parallel()
	serverDir, clientDir := issueBenchCerts(t, t.TempDir())
	addr := serveInBackground(t, 10*time.Second, "baseline-server", "-addr", "127.0.0.1:0", "-tls-dir", serverDir)

	r, code, errOut := runLoadJSON(t, "-endpoints", addr, "-key-id", "baseline", "-tls-dir", clientDir)
	if code != 0 || r.Ops == 0 || r.Errors != 0 {
		t.Fatalf("with the client certificate: exit %d ops %d errors %d (%s): %s", code, r.Ops, r.Errors, r.FirstError, errOut)
	}
	r, code, _ = runLoadJSON(t, "-endpoints", addr, "-key-id", "baseline")
	if code != 1 || r.Ops != 0 {
		t.Fatalf("plaintext against TLS: exit %d ops %d; want every request refused", code, r.Ops)
	}
}

// issueBenchCerts makes a CA in dir and issues from it a node certificate
// for a baseline server (DIR/server) and a client certificate (DIR/client).
func issueBenchCerts(t *testing.T, dir string) (serverDir, clientDir string) {
	t.Helper()
	serverDir, clientDir = filepath.Join(dir, "server"), filepath.Join(dir, "client")
	if err := pki.InitCA(filepath.Join(dir, "ca"), "bench CA", 0); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueNode(serverDir, pki.NodeCertRequest{Region: "bench", NodeID: "baseline"}); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueClient(clientDir, pki.ClientCertRequest{Principal: "bench"}); err != nil {
		t.Fatal(err)
	}
	return serverDir, clientDir
}

// serveInBackground runs a kmsbench server subcommand until the test ends,
// and returns the endpoints its ready line names once it prints it. The
// server must then exit 0 when stopped.
func serveInBackground(t *testing.T, readyWithin time.Duration, args ...string) string {
	t.Helper()
	s := startInBackground(t, readyWithin, args...)
	t.Cleanup(func() {
		if code := s.stop(); code != 0 {
			t.Errorf("kmsbench %s exited %d: %s", args[0], code, s.stderr.String())
		}
	})
	return s.endpoints
}

// backgroundServer is a kmsbench server subcommand running in this process.
type backgroundServer struct {
	endpoints string
	stderr    *testlog.Buffer
	cancel    context.CancelFunc
	done      chan struct{} // closed once it has returned; code is set then
	code      int
}

// startInBackground runs a kmsbench server subcommand until stopped or the
// test ends, and returns once it prints its ready line; it fails the test
// at once if the server exits first.
func startInBackground(t *testing.T, readyWithin time.Duration, args ...string) *backgroundServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout testlog.Buffer
	s := &backgroundServer{stderr: &testlog.Buffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.code = runArgs(ctx, args, &stdout, s.stderr)
	}()
	t.Cleanup(func() { s.stop() })
	nodetest.WaitFor(t, readyWithin, "kmsbench "+args[0]+"'s ready line", func() bool {
		select {
		case <-s.done:
			t.Fatalf("kmsbench %s exited %d before it was ready: %s", args[0], s.code, s.stderr.String())
		default:
		}
		return strings.HasPrefix(stdout.String(), "ready grpc=")
	})
	s.endpoints = strings.TrimSpace(strings.TrimPrefix(stdout.String(), "ready grpc="))
	return s
}

// stop ends the server and returns its exit code.
func (s *backgroundServer) stop() int {
	s.cancel()
	<-s.done
	return s.code
}

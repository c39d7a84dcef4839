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
// and returns the endpoints its ready line names once it prints it.
func serveInBackground(t *testing.T, readyWithin time.Duration, args ...string) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	served := make(chan int, 1)
	go func() { served <- runArgs(ctx, args, &stdout, &stderr) }()
	t.Cleanup(func() {
		stop()
		if code := <-served; code != 0 {
			t.Errorf("kmsbench %s exited %d: %s", args[0], code, stderr.String())
		}
	})
	nodetest.WaitFor(t, readyWithin, "kmsbench "+args[0]+"'s ready line", func() bool {
		select {
		case code := <-served:
			served <- code // for the cleanup
			t.Fatalf("kmsbench %s exited %d before it was ready: %s", args[0], code, stderr.String())
		default:
		}
		return strings.HasPrefix(stdout.String(), "ready grpc=")
	})
	return strings.TrimSpace(strings.TrimPrefix(stdout.String(), "ready grpc="))
}

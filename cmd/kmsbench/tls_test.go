package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/transport/pki"
)

// TestMain keeps a TRENT_TLS_DIR from the developer's shell away from tests
// that talk plaintext to fake servers.
func TestMain(m *testing.M) {
	os.Unsetenv(tlsDirEnv)
	os.Exit(m.Run())
}

// TestBaselineServerServesMutualTLS: with -tls-dir the baseline is "bare
// gRPC with TLS", as Trent is measured with it; a client without the
// certificate gets nothing.
func TestBaselineServerServesMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverDir, clientDir := filepath.Join(dir, "server"), filepath.Join(dir, "client")
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

	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	served := make(chan int, 1)
	go func() {
		served <- runArgs(ctx, []string{"baseline-server", "-addr", "127.0.0.1:0", "-tls-dir", serverDir}, &stdout, &stderr)
	}()
	defer func() {
		stop()
		if code := <-served; code != 0 {
			t.Errorf("baseline server exited %d: %s", code, stderr.String())
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasPrefix(stdout.String(), "ready grpc=") {
		if time.Now().After(deadline) {
			t.Fatalf("baseline server not ready: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(stdout.String(), "ready grpc="))

	r, code, errOut := runLoadJSON(t, "-endpoints", addr, "-key-id", "baseline", "-tls-dir", clientDir)
	if code != 0 || r.Ops == 0 || r.Errors != 0 {
		t.Fatalf("with the client certificate: exit %d ops %d errors %d (%s): %s", code, r.Ops, r.Errors, r.FirstError, errOut)
	}
	r, code, _ = runLoadJSON(t, "-endpoints", addr, "-key-id", "baseline")
	if code != 1 || r.Ops != 0 {
		t.Fatalf("plaintext against TLS: exit %d ops %d; want every request refused", code, r.Ops)
	}
}

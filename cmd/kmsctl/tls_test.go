package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/transport/pki"
)

// testPKI is the CA every test of this package shares: the fake server
// holds a node certificate from it, and TestMain makes its admin client
// certificate kmsctl's default through TRENT_TLS_DIR.
var testPKI struct {
	serverDir string // node.crt, node.key, ca.crt
	clientDir string // client.crt, client.key, ca.crt
}

func TestMain(m *testing.M) { os.Exit(runWithTestPKI(m)) }

func runWithTestPKI(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kmsctl-test-pki-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testPKI.serverDir, testPKI.clientDir = filepath.Join(dir, "server"), filepath.Join(dir, "client")
	if err := issueTestPKI(filepath.Join(dir, "ca")); err != nil {
		fmt.Fprintln(os.Stderr, "test PKI:", err)
		return 1
	}
	os.Setenv(tlsDirEnv, testPKI.clientDir)
	return m.Run()
}

func issueTestPKI(caDir string) error {
	if err := pki.InitCA(caDir, "kmsctl test CA", 0); err != nil {
		return err
	}
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		return err
	}
	if err := ca.IssueNode(testPKI.serverDir, pki.NodeCertRequest{Region: "test-1", NodeID: "fake"}); err != nil {
		return err
	}
	return ca.IssueClient(testPKI.clientDir, pki.ClientCertRequest{Principal: "admin", Roles: []string{"admin"}})
}

// testServerCreds makes the fake server serve mutual TLS as a node does.
func testServerCreds(t *testing.T) grpc.ServerOption {
	t.Helper()
	r, err := pki.NewReloader(filepath.Join(testPKI.serverDir, pki.NodeCertFile), filepath.Join(testPKI.serverDir, pki.NodeKeyFile),
		filepath.Join(testPKI.serverDir, pki.CACertFile), nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	return grpc.Creds(credentials.NewTLS(r.ServerConfig()))
}

// TestCACommandsMakeCertificatesARealNodeAccepts walks the README's
// certificate steps: a CA, a node certificate kmsd starts with, and client
// certificates kmsctl uses; only the admin role may run cluster commands.
func TestCACommandsMakeCertificatesARealNodeAccepts(t *testing.T) {
	dir := t.TempDir()
	ca, nodeDir, adminDir, aliceDir := filepath.Join(dir, "ca"), filepath.Join(dir, "n1"), filepath.Join(dir, "admin"), filepath.Join(dir, "alice")
	mustCA := func(args ...string) string {
		t.Helper()
		r := runKmsctl("", append([]string{"ca"}, args...)...)
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("kmsctl ca %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		return r.stdout
	}
	mustCA("init", ca)
	if out := mustCA("issue-node", "--ca", ca, "--region", "eu-1", "--node-id", "n1", "--host", "localhost", "--host", "10.0.0.1", "--out", nodeDir); !strings.HasPrefix(out, "trent://node/eu-1/n1, expires ") {
		t.Errorf("issue-node printed %q", out)
	}
	if out := mustCA("issue-client", "--ca", ca, "--principal", "admin", "--role", "admin", "--out", adminDir); !strings.HasPrefix(out, "trent://principal/admin roles admin, expires ") {
		t.Errorf("issue-client printed %q", out)
	}
	mustCA("issue-client", "--ca", ca, "--principal", "alice", "--out", aliceDir, "--days", "30")
	for _, key := range []string{filepath.Join(ca, pki.CAKeyFile), filepath.Join(nodeDir, pki.NodeKeyFile), filepath.Join(adminDir, pki.ClientKeyFile)} {
		if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", key, err, fi.Mode())
		}
	}

	n := startNode(t, node.Config{
		DataDir:     filepath.Join(dir, "data"),
		Bootstrap:   true,
		TLSCertFile: filepath.Join(nodeDir, pki.NodeCertFile),
		TLSKeyFile:  filepath.Join(nodeDir, pki.NodeKeyFile),
		TLSCAFile:   filepath.Join(nodeDir, pki.CACertFile),
	})
	if n.ID() != "n1" || n.Region() != "eu-1" {
		t.Errorf("node is %s of %s; want the certificate's n1 of eu-1", n.ID(), n.Region())
	}
	as := func(tlsDir string, args ...string) result {
		return runKmsctl("", append([]string{"--endpoint", n.GRPCAddr(), "--tls-dir", tlsDir}, args...)...)
	}
	as(adminDir, "create-key", "--description", "by admin").mustSucceed(t)
	as(aliceDir, "list-keys").mustSucceed(t)
	if r := as(adminDir, "cluster", "status").mustSucceed(t); !strings.Contains(r.stdout, `"Region": "eu-1"`) {
		t.Errorf("cluster status:\n%s", r.stdout)
	}
	r := as(aliceDir, "cluster", "status")
	if r.code != exitServiceError || !strings.Contains(r.stderr, "An error occurred (AccessDeniedException) when calling the Status operation") ||
		!strings.Contains(r.stderr, `role "admin"`) {
		t.Errorf("cluster status as alice: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestCACommandUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"ca"}, exitUsage, "ca needs a subcommand"},
		{[]string{"ca", "sign"}, exitUsage, `unknown ca subcommand "sign"`},
		{[]string{"ca", "init"}, exitUsage, "ca init takes one directory, got 0"},
		{[]string{"ca", "issue-node", "--region", "eu-1"}, exitUsage, "the following arguments are required: --ca, --node-id, --out"},
		{[]string{"ca", "issue-client", "--ca", dir, "--out", dir}, exitUsage, "required: --principal"},
		{[]string{"ca", "issue-client", "--ca", dir, "--principal", "p", "--out", dir, "--days", "-1"}, exitUsage, "--days: -1 is negative"},
		// 213504 days overflow time.Duration to about 25 minutes.
		{[]string{"ca", "issue-client", "--ca", dir, "--principal", "p", "--out", dir, "--days", "213504"}, exitUsage, "--days: 213504 is more than 106751"},
		{[]string{"ca", "issue-client", "--ca", dir, "--principal", "p", "--out", dir, "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"ca", "issue-client", "--ca", filepath.Join(dir, "none"), "--principal", "p", "--out", dir}, exitFailure, "no such file"},
	} {
		r := runKmsctl("", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	caDir := filepath.Join(dir, "ca")
	runKmsctl("", "ca", "init", caDir).mustSucceed(t)
	if r := runKmsctl("", "ca", "init", caDir); r.code != exitFailure || !strings.Contains(r.stderr, "CA already exists") {
		t.Errorf("second init: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := runKmsctl("", "ca", "issue-node", "--ca", caDir, "--region", "EU", "--node-id", "n1", "--out", dir); r.code != exitFailure || !strings.Contains(r.stderr, `region "EU"`) {
		t.Errorf("bad region: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"ca", "--help"}, {"ca", "issue-node", "--help"}} {
		if r := runKmsctl("", args...); r.code != exitOK || !strings.HasPrefix(r.stdout, "usage: kmsctl ca init DIR") {
			t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

// TestDevModeCertificateIsFoundWithoutFlags: after `kmsd -dev` in a
// directory, kmsctl run in that directory finds ./trent-data/tls/admin, as
// the README's quick start needs; --tls-dir and TRENT_TLS_DIR name it from
// elsewhere.
func TestDevModeCertificateIsFoundWithoutFlags(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "trent-data")
	n := startNode(t, node.Config{DataDir: dataDir, DevTLS: true, Bootstrap: true})
	adminDir := filepath.Join(dataDir, pki.DevTLSDir, pki.DevAdminDir)

	t.Setenv(tlsDirEnv, "")
	t.Chdir(work)
	runKmsctl("", "--endpoint", n.GRPCAddr(), "create-key", "--description", "dev").mustSucceed(t)
	runKmsctl("", "--endpoint", n.GRPCAddr(), "cluster", "status").mustSucceed(t)

	t.Chdir(t.TempDir())
	runKmsctl("", "--endpoint", n.GRPCAddr(), "--tls-dir", adminDir, "list-keys").mustSucceed(t)
	r := runKmsctl("", "--endpoint", n.GRPCAddr(), "list-keys")
	if r.code != exitFailure || !strings.Contains(r.stderr, "--tls-dir DIR") || !strings.Contains(r.stderr, tlsDirEnv) ||
		!strings.Contains(r.stderr, "kmsd -dev") {
		t.Errorf("without a certificate: exit %d, stderr %q", r.code, r.stderr)
	}
	t.Setenv(tlsDirEnv, adminDir)
	runKmsctl("", "--endpoint", n.GRPCAddr(), "list-keys").mustSucceed(t)
}

// TestServerFromAnotherCAIsRefused: kmsctl trusts only servers whose
// certificate comes from its CA.
func TestServerFromAnotherCAIsRefused(t *testing.T) {
	ts := startServer(t)
	other := t.TempDir()
	runKmsctl("", "ca", "init", filepath.Join(other, "ca")).mustSucceed(t)
	runKmsctl("", "ca", "issue-client", "--ca", filepath.Join(other, "ca"), "--principal", "admin", "--out", filepath.Join(other, "admin")).mustSucceed(t)
	r := ts.run("--tls-dir", filepath.Join(other, "admin"), "list-keys")
	if r.code != exitServiceError || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if len(ts.kms.received()) != 0 {
		t.Error("the request reached the server")
	}
}

// startNode starts a single-node region for kmsctl to talk to.
func startNode(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	cfg.GRPCAddr, cfg.RaftAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.RaftHeartbeatTimeout, cfg.RaftElectionTimeout = 400*time.Millisecond, 400*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

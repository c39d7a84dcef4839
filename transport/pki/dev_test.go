package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDevBootstrap(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	tlsDir, err := DevBootstrap(data, "dev", "node1", []string{"kms.local"})
	if err != nil {
		t.Fatal(err)
	}
	if tlsDir != filepath.Join(data, "tls") {
		t.Fatalf("tls dir %s", tlsDir)
	}
	files := map[string]os.FileMode{
		"ca/ca.crt":        0o644,
		"ca/ca.key":        0o600,
		"node/node.crt":    0o644,
		"node/node.key":    0o600,
		"node/ca.crt":      0o644,
		"admin/client.crt": 0o644,
		"admin/client.key": 0o600,
		"admin/ca.crt":     0o644,
	}
	contents := map[string]string{}
	for name, mode := range files {
		p := filepath.Join(tlsDir, filepath.FromSlash(name))
		checkMode(t, p, mode)
		contents[name] = string(readFile(t, p))
	}
	entries, _ := os.ReadDir(data)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only tls", len(entries))
	}

	node := nodeReloader(t, filepath.Join(tlsDir, DevNodeDir), nil, -1)
	if got := node.Identity().String(); got != "trent://node/dev/node1" {
		t.Errorf("node identity %s", got)
	}
	if err := node.Certificate().VerifyHostname("kms.local"); err != nil {
		t.Error(err)
	}
	admin := clientReloader(t, filepath.Join(tlsDir, DevAdminDir))
	if id := admin.Identity(); id.Principal != "admin" || !id.HasRole("admin") {
		t.Errorf("admin identity %+v", id)
	}
	// The admin certificate works against the node.
	addr, results := startServer(t, node.ServerConfig())
	if _, err := tryTLS(addr, admin.ClientConfig("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	nextResult(t, results)

	// Idempotent: a second run changes nothing.
	if again, err := DevBootstrap(data, "dev", "node1", []string{"kms.local"}); err != nil || again != tlsDir {
		t.Fatalf("second DevBootstrap: %s, %v", again, err)
	}
	for name, was := range contents {
		if now := string(readFile(t, filepath.Join(tlsDir, filepath.FromSlash(name)))); now != was {
			t.Errorf("second DevBootstrap rewrote %s", name)
		}
	}

	// Another node id in the same data dir is an error, not a silent reissue.
	if _, err := DevBootstrap(data, "dev", "node2", nil); err == nil || !strings.Contains(err.Error(), "trent://node/dev/node1") {
		t.Fatalf("DevBootstrap for another node: %v", err)
	}
	if _, err := DevBootstrap(data, "Dev", "node1", nil); err == nil {
		t.Fatal("bad region accepted")
	}

	// A new host reissues the node certificate from the same CA, keeping the old names.
	if _, err := DevBootstrap(data, "dev", "node1", []string{"10.1.2.3"}); err != nil {
		t.Fatal(err)
	}
	if err := node.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"10.1.2.3", "kms.local", "localhost", "127.0.0.1"} {
		if err := node.Certificate().VerifyHostname(h); err != nil {
			t.Errorf("reissued certificate: %v", err)
		}
	}
	checkMode(t, filepath.Join(tlsDir, "node", "node.key"), 0o600)
	if string(readFile(t, filepath.Join(tlsDir, "ca", "ca.key"))) != contents["ca/ca.key"] {
		t.Error("the CA changed")
	}
}

func TestDevBootstrapRenewsExpiringAdmin(t *testing.T) {
	data := t.TempDir()
	tlsDir, err := DevBootstrap(data, "dev", "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(filepath.Join(tlsDir, DevCADir))
	if err != nil {
		t.Fatal(err)
	}
	adminDir := filepath.Join(tlsDir, DevAdminDir)
	if err := ca.IssueClient(adminDir, ClientCertRequest{Principal: "admin", Roles: []string{"admin"}, Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := DevBootstrap(data, "dev", "n1", nil); err != nil {
		t.Fatal(err)
	}
	if left := time.Until(readCert(t, filepath.Join(adminDir, ClientCertFile)).NotAfter); left < devRenewBefore {
		t.Errorf("admin certificate still expires in %v", left)
	}
}

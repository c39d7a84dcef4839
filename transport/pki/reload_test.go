package pki

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// servedSerial connects with a principal's client config and returns the
// serial number of the certificate the server presented.
func servedSerial(t *testing.T, addr string, results <-chan hsResult, client *Reloader) string {
	t.Helper()
	cs, err := tryTLS(addr, client.ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if res := nextResult(t, results); res.err != nil {
		t.Fatal(res.err)
	}
	return cs.PeerCertificates[0].SerialNumber.String()
}

func serialOf(t *testing.T, dir string) string {
	return readCert(t, filepath.Join(dir, NodeCertFile)).SerialNumber.String()
}

func TestRotationByPolling(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	nodeDir := issueNode(t, ca, "eu-1", "n1")
	client := clientReloader(t, issueClient(t, ca, "admin"))
	logger, logs := newLogger(t)
	node := nodeReloader(t, nodeDir, logger, 20*time.Millisecond)
	addr, results := startServer(t, node.ServerConfig())

	first := serialOf(t, nodeDir)
	if got := servedSerial(t, addr, results, client); got != first {
		t.Fatalf("served %s, want %s", got, first)
	}

	// Issue a new pair into the same directory, as `kmsctl ca issue-node` does.
	if err := ca.IssueNode(nodeDir, NodeCertRequest{Region: "eu-1", NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	second := serialOf(t, nodeDir)
	eventually(t, "the new certificate to be served", func() bool {
		return servedSerial(t, addr, results, client) == second
	})
	if got := node.Certificate().SerialNumber.String(); got != second {
		t.Errorf("Certificate() serial %s, want %s", got, second)
	}

	// A corrupt replacement is refused and the last good certificate stays.
	mark := len(logs.String())
	if err := os.WriteFile(filepath.Join(nodeDir, NodeCertFile), []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLogAfter(t, logs, mark, "reload failed", "trigger=\"files changed\"")
	if got := servedSerial(t, addr, results, client); got != second {
		t.Fatalf("after a corrupt file: served %s, want %s", got, second)
	}
	if err := node.Reload(); err == nil {
		t.Fatal("Reload of a corrupt certificate succeeded")
	}
	if got := servedSerial(t, addr, results, client); got != second {
		t.Fatalf("after a failed Reload: served %s, want %s", got, second)
	}
	if n := strings.Count(logs.String()[mark:], "reload failed"); n != 2 {
		t.Errorf("%d reload failures logged, want 2 (the poll must not retry unchanged files)", n)
	}

	// Fixing the files is picked up again.
	if err := ca.IssueNode(nodeDir, NodeCertRequest{Region: "eu-1", NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	third := serialOf(t, nodeDir)
	eventually(t, "the repaired certificate to be served", func() bool {
		return servedSerial(t, addr, results, client) == third
	})
}

func TestRotationByReload(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	nodeDir := issueNode(t, ca, "eu-1", "n1")
	client := clientReloader(t, issueClient(t, ca, "admin"))
	node := nodeReloader(t, nodeDir, nil, -1) // no polling: SIGHUP only
	addr, results := startServer(t, node.ServerConfig())
	first := serialOf(t, nodeDir)

	if err := ca.IssueNode(nodeDir, NodeCertRequest{Region: "eu-1", NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, addr, results, client); got != first {
		t.Fatalf("without Reload: served %s, want the old %s", got, first)
	}
	if err := node.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, want := servedSerial(t, addr, results, client), serialOf(t, nodeDir); got != want {
		t.Fatalf("after Reload: served %s, want %s", got, want)
	}

	// The key of another pair does not match: refused.
	other := issueNode(t, ca, "eu-1", "n1")
	key, _ := os.ReadFile(filepath.Join(other, NodeKeyFile))
	if err := os.WriteFile(filepath.Join(nodeDir, NodeKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := node.Reload(); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Reload with a foreign key: %v", err)
	}
}

func TestReloadRefusesIdentityChange(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	nodeDir := issueNode(t, ca, "eu-1", "n1")
	node := nodeReloader(t, nodeDir, nil, -1)
	if err := ca.IssueNode(nodeDir, NodeCertRequest{Region: "eu-1", NodeID: "n2"}); err != nil {
		t.Fatal(err)
	}
	if err := node.Reload(); err == nil || !strings.Contains(err.Error(), "identity changed") {
		t.Fatalf("Reload to another node id: %v", err)
	}
	if got := node.Identity().String(); got != "trent://node/eu-1/n1" {
		t.Fatalf("identity now %s", got)
	}
}

func TestReloadHonoursRotatedCA(t *testing.T) {
	_, oldCA := newTestCA(t, "old CA")
	_, newCA := newTestCA(t, "new CA")
	nodeDir := issueNode(t, oldCA, "eu-1", "n1")
	node := nodeReloader(t, nodeDir, nil, -1)
	addr, results := startServer(t, node.ServerConfig())

	newClientDir := issueClient(t, newCA, "admin")
	cfg := plainClientConfig(t, filepath.Join(nodeDir, CACertFile), newClientDir, ClientCertFile, ClientKeyFile)
	if _, err := tryTLS(addr, cfg); err == nil {
		t.Fatal("client of the new CA accepted before the CA file changed")
	}
	nextResult(t, results)

	// Trust both CAs, as during a CA rotation.
	bundle := append(readFile(t, filepath.Join(nodeDir, CACertFile)), readFile(t, filepath.Join(newClientDir, CACertFile))...)
	if err := writeFileAtomic(filepath.Join(nodeDir, CACertFile), bundle, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.Reload(); err != nil {
		t.Fatal(err)
	}
	cs, err := tryTLS(addr, cfg)
	if err != nil {
		t.Fatalf("client of the new CA refused after the reload: %v", err)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("version %x", cs.Version)
	}
	if res := nextResult(t, results); res.err != nil {
		t.Fatal(res.err)
	}

	// A CA file that no longer covers the node's own certificate is refused.
	if err := writeFileAtomic(filepath.Join(nodeDir, CACertFile), readFile(t, filepath.Join(newClientDir, CACertFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.Reload(); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("Reload with a CA that does not sign the node: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewReloaderRefusesBadMaterial(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	_, foreign := newTestCA(t, "foreign CA")
	good := issueNode(t, ca, "eu-1", "n1")
	expired := filepath.Join(t.TempDir(), "expired")
	ca.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	if err := ca.IssueNode(expired, NodeCertRequest{Region: "eu-1", NodeID: "n1", Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ca.now = time.Now
	foreignNode := issueNode(t, foreign, "eu-1", "n1")

	cases := []struct {
		name            string
		cert, key, cafn string
		want            string
	}{
		{"missing certificate", filepath.Join(t.TempDir(), "none.crt"), filepath.Join(good, NodeKeyFile), filepath.Join(good, CACertFile), "no such file"},
		{"expired", filepath.Join(expired, NodeCertFile), filepath.Join(expired, NodeKeyFile), filepath.Join(expired, CACertFile), "expired"},
		{"other CA", filepath.Join(foreignNode, NodeCertFile), filepath.Join(foreignNode, NodeKeyFile), filepath.Join(good, CACertFile), "unknown authority"},
		{"key mismatch", filepath.Join(good, NodeCertFile), filepath.Join(foreignNode, NodeKeyFile), filepath.Join(good, CACertFile), "does not match"},
		{"CA file is a leaf", filepath.Join(good, NodeCertFile), filepath.Join(good, NodeKeyFile), filepath.Join(good, NodeCertFile), "not a CA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReloader(c.cert, c.key, c.cafn, nil, -1)
			if err == nil {
				r.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

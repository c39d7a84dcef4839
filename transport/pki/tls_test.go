package pki

import (
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
)

// serverFixture is a node serving ServerConfig, with a client certificate
// from the same CA and one from a foreign CA.
type serverFixture struct {
	ca                 *CA
	nodeDir, clientDir string
	foreignClientDir   string
	node               *Reloader
	logs               *testlog.Buffer
	addr               string
	results            <-chan hsResult
}

func newServerFixture(t *testing.T, opts ...PeerOption) *serverFixture {
	t.Helper()
	f := &serverFixture{}
	_, f.ca = newTestCA(t, "cluster CA")
	_, foreign := newTestCA(t, "foreign CA")
	f.nodeDir = issueNode(t, f.ca, "eu-1", "n1")
	f.clientDir = issueClient(t, f.ca, "admin", "admin")
	f.foreignClientDir = issueClient(t, foreign, "admin", "admin")
	var logger = newLoggerInto(t, &f.logs)
	f.node = nodeReloader(t, f.nodeDir, logger, -1)
	f.addr, f.results = startServer(t, f.node.ServerConfig(opts...))
	return f
}

func newLoggerInto(t *testing.T, buf **testlog.Buffer) (logger *slog.Logger) {
	logger, *buf = newLogger(t)
	return logger
}

func (f *serverFixture) clientConfig(t *testing.T, certDir string) *tls.Config {
	return plainClientConfig(t, filepath.Join(f.nodeDir, CACertFile), certDir, ClientCertFile, ClientKeyFile)
}

func TestServerAcceptsMutualTLS13(t *testing.T) {
	f := newServerFixture(t)

	// A principal through its own Reloader's ClientConfig.
	cs, err := tryTLS(f.addr, clientReloader(t, f.clientDir).ClientConfig("127.0.0.1"))
	if err != nil {
		t.Fatalf("valid client refused: %v", err)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("client negotiated %s", tls.VersionName(cs.Version))
	}
	res := nextResult(t, f.results)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.state.Version != tls.VersionTLS13 || res.state.DidResume {
		t.Errorf("server: version %s, resumed %v", tls.VersionName(res.state.Version), res.state.DidResume)
	}
	id, err := PeerIdentity(res.state)
	if err != nil || id.Kind != KindPrincipal || id.Principal != "admin" || !id.HasRole("admin") {
		t.Errorf("PeerIdentity = %+v, %v", id, err)
	}

	// Another node, through the node's ClientConfig (by DNS name this time).
	other := nodeReloader(t, issueNode(t, f.ca, "us-1", "n9"), nil, -1)
	if _, err := tryTLS(f.addr, other.ClientConfig("localhost")); err != nil {
		t.Fatalf("node client refused: %v", err)
	}
	res = nextResult(t, f.results)
	if id, err := PeerIdentity(res.state); err != nil || id.String() != "trent://node/us-1/n9" {
		t.Errorf("PeerIdentity = %v, %v", id, err)
	}
}

func TestServerRefuses(t *testing.T) {
	f := newServerFixture(t)

	expiredDir := filepath.Join(t.TempDir(), "expired")
	f.ca.now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	if err := f.ca.IssueClient(expiredDir, ClientCertRequest{Principal: "old", Validity: time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.ca.now = time.Now

	tls12 := f.clientConfig(t, f.clientDir)
	tls12.MaxVersion = tls.VersionTLS12

	cases := []struct {
		name      string
		cfg       *tls.Config
		serverErr string
	}{
		{"no client certificate", f.clientConfig(t, ""), "didn't provide a certificate"},
		{"client certificate from another CA", f.clientConfig(t, f.foreignClientDir), "unknown authority"},
		{"expired client certificate", f.clientConfig(t, expiredDir), "expired"},
		{"TLS 1.2 only", tls12, "does not offer TLS 1.3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := tryTLS(f.addr, c.cfg); err == nil {
				t.Fatal("client got through")
			}
			res := nextResult(t, f.results)
			if res.err == nil || !strings.Contains(res.err.Error(), c.serverErr) {
				t.Fatalf("server error %v, want %q", res.err, c.serverErr)
			}
		})
	}
	// The version refusal happens in our callback, so it is logged there.
	waitLog(t, f.logs, "connection refused", "remote=127.0.0.1:", "does not offer TLS 1.3")

	for name, payload := range map[string]string{
		"HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"garbage":        "\x00\x01hello, is this a KMS?\n",
	} {
		t.Run("plaintext "+name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(payload)); err != nil {
				t.Fatal(err)
			}
			res := nextResult(t, f.results)
			if res.err == nil {
				t.Fatal("plaintext handshake succeeded")
			}
			_ = c.SetReadDeadline(time.Now().Add(waitFor))
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			if strings.Contains(string(buf[:n]), "ok") {
				t.Fatalf("server answered plaintext: %q", buf[:n])
			}
		})
	}
}

func TestServerConfigPeerOptions(t *testing.T) {
	f := newServerFixture(t, RequireNode())
	if _, err := tryTLS(f.addr, clientReloader(t, f.clientDir).ClientConfig("127.0.0.1")); err == nil {
		t.Fatal("principal accepted by a nodes-only server")
	}
	if res := nextResult(t, f.results); res.err == nil || !strings.Contains(res.err.Error(), "is not a node") {
		t.Fatalf("server error %v", res.err)
	}
	waitLog(t, f.logs, "connection refused", "remote=127.0.0.1:", "trent://principal/admin is not a node")

	node := nodeReloader(t, issueNode(t, f.ca, "eu-1", "n2"), nil, -1)
	if _, err := tryTLS(f.addr, node.ClientConfig("127.0.0.1")); err != nil {
		t.Fatalf("node refused: %v", err)
	}
	if res := nextResult(t, f.results); res.err != nil {
		t.Fatal(res.err)
	}
}

func TestClientConfigVerifiesServer(t *testing.T) {
	f := newServerFixture(t)
	logger, logs := newLogger(t)
	client, err := NewReloader(filepath.Join(f.clientDir, ClientCertFile), filepath.Join(f.clientDir, ClientKeyFile),
		filepath.Join(f.clientDir, CACertFile), logger, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	if _, err := tryTLS(f.addr, client.ClientConfig("127.0.0.1", RequireNodeID("eu-1", "n1"))); err != nil {
		t.Fatalf("right node refused: %v", err)
	}
	nextResult(t, f.results)

	refused := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"other region", client.ClientConfig("127.0.0.1", RequireRegion("us-1")), "not a node of region"},
		{"other node", client.ClientConfig("127.0.0.1", RequireNodeID("eu-1", "n2")), "is not node"},
		{"name not in certificate", client.ClientConfig("kms.example.com"), "not kms.example.com"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			_, err := tryTLS(f.addr, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			nextResult(t, f.results)
			waitLog(t, logs, "server refused", c.want)
		})
	}

	// A client of another cluster does not trust this server.
	foreign := clientReloader(t, f.foreignClientDir)
	if _, err := tryTLS(f.addr, foreign.ClientConfig("127.0.0.1")); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("foreign CA client: %v", err)
	}
	nextResult(t, f.results)

	// A principal's certificate cannot serve: it lacks server auth, and it is not a node.
	principal := clientReloader(t, f.clientDir)
	addr, results := startServer(t, principal.ServerConfig())
	other := nodeReloader(t, f.nodeDir, nil, -1)
	if _, err := tryTLS(addr, other.ClientConfig("127.0.0.1")); err == nil {
		t.Fatal("a principal certificate served")
	}
	nextResult(t, results)
}

func TestServerConfigShape(t *testing.T) {
	f := newServerFixture(t)
	cfg := f.node.ServerConfig()
	if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.GetConfigForClient == nil || cfg.GetCertificate == nil {
		t.Errorf("outer config: min %x auth %v", cfg.MinVersion, cfg.ClientAuth)
	}
	c := f.node.ClientConfig("x")
	if c.MinVersion != tls.VersionTLS13 || c.GetClientCertificate == nil || c.VerifyConnection == nil {
		t.Errorf("client config: %+v", c)
	}
}

package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
)

const waitFor = 5 * time.Second

func newLogger(t *testing.T) (*slog.Logger, *testlog.Buffer) {
	t.Helper()
	buf := &testlog.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
		if strings.Contains(buf.String(), "PRIVATE KEY") {
			t.Errorf("log holds private key material")
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// eventually waits until cond holds or fails the test at the deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, waitFor, what, cond)
}

func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitLog(t *testing.T, buf *testlog.Buffer, substrs ...string) {
	t.Helper()
	waitLogAfter(t, buf, 0, substrs...)
}

// waitLogAfter waits for a log line holding every substring, written after
// the first mark bytes of the log.
func waitLogAfter(t *testing.T, buf *testlog.Buffer, mark int, substrs ...string) {
	t.Helper()
	eventually(t, "log lines "+strings.Join(substrs, " + "), func() bool {
		return buf.HasLine(mark, substrs...)
	})
}

func newTestCA(t *testing.T, name string) (string, *CA) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca")
	if err := InitCA(dir, name, 0); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ca
}

func issueNode(t *testing.T, ca *CA, region, id string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node-"+id)
	if err := ca.IssueNode(dir, NodeCertRequest{Region: region, NodeID: id}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func issueClient(t *testing.T, ca *CA, principal string, roles ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "client-"+principal)
	if err := ca.IssueClient(dir, ClientCertRequest{Principal: principal, Roles: roles}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func nodeReloader(t *testing.T, dir string, logger *slog.Logger, poll time.Duration) *Reloader {
	t.Helper()
	r, err := NewReloader(filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile), filepath.Join(dir, CACertFile), logger, poll)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func clientReloader(t *testing.T, dir string) *Reloader {
	t.Helper()
	r, err := NewReloader(filepath.Join(dir, ClientCertFile), filepath.Join(dir, ClientKeyFile), filepath.Join(dir, CACertFile), nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := parseCerts(data)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// plainClientConfig is a hand-built client config: it trusts caFile and,
// if certDir is not empty, presents certName/keyName from it. No identity
// checks, so tests can reach the server side's checks.
func plainClientConfig(t *testing.T, caFile, certDir, certName, keyName string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if certDir != "" {
		pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, certName), filepath.Join(certDir, keyName))
		if err != nil {
			t.Fatal(err)
		}
		// GetClientCertificate, not Certificates: crypto/tls would not
		// send a certificate the server's CA list does not name.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// hsResult is what the test server saw of one connection.
type hsResult struct {
	err   error
	state tls.ConnectionState
}

// startServer accepts TCP connections, runs a TLS server handshake with cfg
// on each, answers "ok\n" on success and reports every outcome.
func startServer(t *testing.T, cfg *tls.Config) (string, <-chan hsResult) {
	t.Helper()
	ln := listen(t)
	results := make(chan hsResult, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := tls.Server(c, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				defer cancel()
				err := tc.HandshakeContext(ctx)
				if err == nil {
					_, err = io.WriteString(tc, "ok\n")
				}
				results <- hsResult{err: err, state: tc.ConnectionState()}
			}()
		}
	}()
	return ln.Addr().String(), results
}

func nextResult(t *testing.T, results <-chan hsResult) hsResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(waitFor):
		t.Fatal("server saw no connection")
		return hsResult{}
	}
}

// tryTLS dials addr with cfg, completes the handshake and reads the
// server's "ok": an error means the connection was refused on either side.
func tryTLS(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: waitFor}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(tc, buf); err != nil {
		return tc.ConnectionState(), err
	}
	return tc.ConnectionState(), nil
}

package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/trent-kms/trent/internal/testlog"
)

type testLayer struct {
	raft.StreamLayer
	logs *testlog.Buffer
	addr raft.ServerAddress
}

func newLayer(t *testing.T, ca *CA, region, id string) *testLayer {
	t.Helper()
	logger, logs := newLogger(t)
	r := nodeReloader(t, issueNode(t, ca, region, id), logger, -1)
	s := NewStreamLayer(listen(t), r, region, logger)
	t.Cleanup(func() { s.Close() })
	return &testLayer{StreamLayer: s, logs: logs, addr: raft.ServerAddress(s.Addr().String())}
}

// acceptAsync runs Accept in the background.
func acceptAsync(l raft.StreamLayer) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func accepted(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("Accept failed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(waitFor):
		t.Fatal("Accept returned nothing")
		return nil
	}
}

func dial(t *testing.T, from *testLayer, to raft.ServerAddress) net.Conn {
	t.Helper()
	c, err := from.Dial(to, waitFor)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	_ = a.SetDeadline(time.Now().Add(waitFor))
	_ = b.SetDeadline(time.Now().Add(waitFor))
	errc := make(chan error, 1)
	go func() {
		_, err := a.Write([]byte("ping"))
		errc <- err
	}()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

// expectNextFrom checks that the next connection Accept yields comes from
// a fresh, valid Dial: the refused ones before it never reached Accept.
func expectNextFrom(t *testing.T, server, client *testLayer) {
	t.Helper()
	ch := acceptAsync(server)
	c := dial(t, client, server.addr)
	s := accepted(t, ch)
	if s.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("Accept yielded %s, want the valid dial from %s", s.RemoteAddr(), c.LocalAddr())
	}
	exchange(t, c, s)
}

func TestStreamLayerSameRegion(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	a, b := newLayer(t, ca, "eu-1", "n1"), newLayer(t, ca, "eu-1", "n2")

	ch := acceptAsync(b)
	c := dial(t, a, b.addr)
	s := accepted(t, ch)
	exchange(t, c, s)
	for _, conn := range []net.Conn{c, s} {
		cs := conn.(*tls.Conn).ConnectionState()
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("version %s", tls.VersionName(cs.Version))
		}
	}
	if id, err := PeerIdentity(s.(*tls.Conn).ConnectionState()); err != nil || id.String() != "trent://node/eu-1/n1" {
		t.Errorf("server sees %v, %v", id, err)
	}
	expectNextFrom(t, a, b) // and the other way
}

func TestStreamLayerRefusesOtherRegion(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	eu, eu2, us := newLayer(t, ca, "eu-1", "n1"), newLayer(t, ca, "eu-1", "n2"), newLayer(t, ca, "us-1", "n1")

	// Dialling: each side refuses the other's server certificate.
	for _, pair := range [][2]*testLayer{{eu, us}, {us, eu}} {
		_, err := pair[0].Dial(pair[1].addr, waitFor)
		if err == nil || !strings.Contains(err.Error(), "is not a node of region") {
			t.Fatalf("Dial across regions: %v", err)
		}
		waitLog(t, pair[0].logs, "server refused", "remote="+string(pair[1].addr), "is not a node of region")
	}

	// Accepting: a us-1 node that does not check the server still gets refused.
	usDir := issueNode(t, ca, "us-1", "n7")
	cfg := plainClientConfig(t, filepath.Join(usDir, CACertFile), usDir, NodeCertFile, NodeKeyFile)
	local := refusedClient(t, eu.addr, cfg)
	waitLog(t, eu.logs, "connection refused", "remote="+local, "trent://node/us-1/n7 is not a node of region")
	expectNextFrom(t, eu, eu2)
}

// refusedClient completes a client handshake with cfg (in TLS 1.3 the client
// finishes before the server checks it), then expects the server to hang
// up. It returns the client's local address.
func refusedClient(t *testing.T, addr raft.ServerAddress, cfg *tls.Config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", string(addr))
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("server did not hang up")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept the connection open")
	}
	return c.LocalAddr().String()
}

func TestStreamLayerRefusesPrincipal(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	a, b := newLayer(t, ca, "eu-1", "n1"), newLayer(t, ca, "eu-1", "n2")
	dir := issueClient(t, ca, "admin", "admin")
	cfg := plainClientConfig(t, filepath.Join(dir, CACertFile), dir, ClientCertFile, ClientKeyFile)
	local := refusedClient(t, a.addr, cfg)
	waitLog(t, a.logs, "connection refused", "remote="+local, "trent://principal/admin is not a node")
	expectNextFrom(t, a, b)
}

func TestStreamLayerRefusesPlaintext(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	a, b := newLayer(t, ca, "eu-1", "n1"), newLayer(t, ca, "eu-1", "n2")

	// Plaintext in: raft's own wire format starts with an rpc type byte.
	c, err := net.Dial("tcp", string(a.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0x81, 0xa4, 'T', 'e', 'r', 'm', 1, '\n', '\n', '\n', '\n', '\n'}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.Copy(io.Discard, c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("server kept a plaintext connection open")
		}
	}
	waitLog(t, a.logs, "connection refused", "remote="+c.LocalAddr().String())
	expectNextFrom(t, a, b)

	// Plaintext out: Dial to something that does not speak TLS fails.
	plain := listen(t)
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
			c.Close()
		}
	}()
	if _, err := a.Dial(raft.ServerAddress(plain.Addr().String()), waitFor); err == nil {
		t.Fatal("Dial to a plaintext server succeeded")
	}
	waitLog(t, a.logs, "server refused", "remote="+plain.Addr().String())
}

func TestStreamLayerClose(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	a := newLayer(t, ca, "eu-1", "n1")

	// A connection that never sends a ClientHello is in a pending handshake.
	idle, err := net.Dial("tcp", string(a.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ch := acceptAsync(a)

	done := make(chan error, 1)
	go func() { done <- a.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Close waited on an idle handshake")
	}
	if _, ok := <-ch; ok {
		t.Fatal("Accept returned a connection after Close")
	}
	if _, err := a.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("Close left the pending handshake's connection open")
	}
}

func TestStreamLayerWarnsOnOwnRegionMismatch(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	logger, logs := newLogger(t)
	r := nodeReloader(t, issueNode(t, ca, "eu-1", "n1"), logger, -1)
	s := NewStreamLayer(listen(t), r, "us-1", logger)
	defer s.Close()
	waitLog(t, logs, "level=ERROR", "identity=trent://node/eu-1/n1", "region=us-1")
}

package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/internalpb"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// TestEveryPortRefusesWhatMutualTLSForbids tries every kind of connection
// a node must refuse, on its gRPC port and its Raft port, and checks that
// the refusal happened and that the node logged it with the caller's address.
func TestEveryPortRefusesWhatMutualTLSForbids(t *testing.T) {
	logs := &testlog.Buffer{}
	r := nodetest.StartRegion(t, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 0 {
			cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		}
	}})
	grpcAddr, raftAddr := r.Node(0).GRPCAddr(), r.Node(0).RaftAddr()
	certs := newTestCerts(t, r)
	listKeys := func(c *grpc.ClientConn) error {
		_, err := kmspb.NewKMSClient(c).ListKeys(ctxT(t), &kmspb.ListKeysRequest{})
		return err
	}
	clusterStatus := func(c *grpc.ClientConn) error {
		_, err := kmspb.NewClusterClient(c).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
		return err
	}
	nodeInfo := func(c *grpc.ClientConn) error {
		_, err := internalpb.NewInternalClient(c).NodeInfo(ctxT(t), &internalpb.NodeInfoRequest{})
		return err
	}
	join := func(c *grpc.ClientConn) error {
		_, err := internalpb.NewInternalClient(c).Join(ctxT(t), &internalpb.JoinRequest{NodeId: "node8", RaftAddr: "127.0.0.1:1", GrpcAddr: "127.0.0.1:2", TransportPublicKey: []byte{1}, JoinSecret: []byte("test-join-secret")})
		return err
	}

	grpcRefusals := []struct {
		name  string
		creds credentials.TransportCredentials
		call  func(*grpc.ClientConn) error
		code  codes.Code
		log   string // in the node's log line about this connection
	}{
		{"plaintext gRPC", insecure.NewCredentials(), listKeys, codes.Unavailable, "does not look like a TLS handshake"},
		{"no client certificate", certs.client(nil), listKeys, codes.Unavailable, "certificate"},
		{"certificate from another CA", certs.client(certs.foreignAdmin), listKeys, codes.Unavailable, "unknown authority"},
		{"expired client certificate", certs.client(certs.expiredAdmin), listKeys, codes.Unavailable, "expired"},
		{"node certificate on the KMS API", certs.client(certs.node1), listKeys, codes.PermissionDenied, "node certificate"},
		{"node certificate on the Cluster API", certs.client(certs.node1), clusterStatus, codes.PermissionDenied, "node certificate"},
		{"principal certificate on the Internal service", certs.client(certs.admin), nodeInfo, codes.PermissionDenied, "Internal service"},
		{"principal certificate joining", certs.client(certs.admin), join, codes.PermissionDenied, "Internal service"},
		{"node certificate joining as another node", certs.client(certs.node7), join, codes.PermissionDenied, `may not join as node \"node8\"`},
		{"node of the region that is not a member", certs.client(certs.node7), nodeInfo, codes.PermissionDenied, "is not a member"},
		{"node of another region on the Internal service", certs.client(certs.otherRegionNode), nodeInfo, codes.PermissionDenied, `region \"test-1\"`},
		{"principal without the admin role on the Cluster API", certs.client(certs.alice), clusterStatus, codes.PermissionDenied, `needs role \"admin\"`},
	}
	for _, tc := range grpcRefusals {
		t.Run(tc.name, func(t *testing.T) {
			local, err := callOnce(grpcAddr, tc.creds, tc.call)
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			if tc.code == codes.PermissionDenied && !strings.HasPrefix(status.Convert(err).Message(), "AccessDeniedException: ") {
				t.Errorf("message %q does not name AccessDeniedException", status.Convert(err).Message())
			}
			waitForLogLine(t, logs, "refused", "remote="+local, tc.log)
		})
	}

	raftRefusals := []struct {
		name string
		cert *certFiles // nil: not TLS at all
		log  string
	}{
		{"plaintext bytes to Raft", nil, "does not look like a TLS handshake"},
		{"principal certificate to Raft", certs.admin, "is not a node"},
		{"node of another region to Raft", certs.otherRegionNode, `is not a node of region \"test-1\"`},
		{"certificate from another CA to Raft", certs.foreignAdmin, "unknown authority"},
	}
	for _, tc := range raftRefusals {
		t.Run(tc.name, func(t *testing.T) {
			local := refusedByRaft(t, raftAddr, certs, tc.cert)
			waitForLogLine(t, logs, "raft tls: connection refused", "remote="+local, tc.log)
		})
	}

	t.Run("admin is served", func(t *testing.T) {
		for _, call := range []func(*grpc.ClientConn) error{listKeys, clusterStatus} {
			if _, err := callOnce(grpcAddr, certs.client(certs.admin), call); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("a principal without roles uses the KMS API", func(t *testing.T) {
		if _, err := callOnce(grpcAddr, certs.client(certs.alice), listKeys); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRotatedCertificateIsPresentedOnNewConnections replaces a node's
// certificate files while it serves: new connections, on both ports, get the
// new certificate; connections open before keep working, and so does the
// region. A node that does not poll picks the files up on ReloadTLS (kmsd's
// SIGHUP).
func TestRotatedCertificateIsPresentedOnNewConnections(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.TLSPollInterval = -1 // reloads only when asked
		}
	}})
	certs := newTestCerts(t, r)
	ca, err := pki.LoadCA(r.CADir())
	if err != nil {
		t.Fatal(err)
	}
	before := r.KMS(0) // a connection made with the old certificate
	createKey(t, before, "")
	oldSerial := servedSerial(t, r.Node(0).GRPCAddr(), certs, certs.admin)

	rotate := func(i int) *big.Int {
		t.Helper()
		dir := r.NodeCertDir(i)
		req := pki.NodeCertRequest{Region: nodetest.RegionName, NodeID: r.Node(i).ID(), Hosts: []string{"127.0.0.1"}}
		if err := ca.IssueNode(dir, req); err != nil {
			t.Fatal(err)
		}
		return readCert(t, filepath.Join(dir, pki.NodeCertFile)).SerialNumber
	}
	newSerial := rotate(0)
	if newSerial.Cmp(oldSerial) == 0 {
		t.Fatal("the new certificate has the old serial")
	}
	nodetest.WaitFor(t, 10*time.Second, "node0 to present its new certificate on both ports", func() bool {
		return servedSerial(t, r.Node(0).GRPCAddr(), certs, certs.admin).Cmp(newSerial) == 0 &&
			servedSerial(t, r.Node(0).RaftAddr(), certs, certs.node2).Cmp(newSerial) == 0
	})
	createKey(t, before, "")                                 // the old connection still works
	createKey(t, kmspb.NewKMSClient(r.ConnAs(0, "bob")), "") // and so do new ones
	createKey(t, r.KMS(r.Followers()[0]), "")                // and Raft between the nodes

	newSerial = rotate(1)
	if err := r.Node(1).ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, r.Node(1).GRPCAddr(), certs, certs.admin); got.Cmp(newSerial) != 0 {
		t.Fatalf("after ReloadTLS node1 presents serial %x, want %x", got, newSerial)
	}
}

// callOnce makes one call on a fresh connection and returns the local
// address of the connection's first attempt, by which the node's log names
// the caller.
func callOnce(addr string, creds credentials.TransportCredentials, call func(*grpc.ClientConn) error) (string, error) {
	var mu sync.Mutex
	var locals []string
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			mu.Lock()
			locals = append(locals, c.LocalAddr().String())
			mu.Unlock()
		}
		return c, err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithContextDialer(dial))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	err = call(conn)
	mu.Lock()
	defer mu.Unlock()
	if len(locals) == 0 {
		return "", fmt.Errorf("no connection was made (%v)", err)
	}
	return locals[0], err
}

// refusedByRaft connects to a Raft port (with TLS and cert, or with
// plaintext bytes when cert is nil), checks that the node closes the
// connection without an answer, and returns the local address.
func refusedByRaft(t *testing.T, addr string, certs *testCerts, cert *certFiles) string {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	conn := raw
	if cert != nil {
		tc := tls.Client(raw, certs.tlsConfig(cert))
		// In TLS 1.3 the client's handshake ends before the server has
		// judged the client certificate; the refusal arrives on the first
		// read. A server-side refusal before that fails the handshake.
		if err := tc.Handshake(); err != nil {
			return raw.LocalAddr().String()
		}
		conn = tc
	}
	// A raft AppendEntries type byte and some garbage: whatever the node
	// makes of it, it must not answer.
	_, _ = conn.Write([]byte{0, 'n', 'o', 't', ' ', 'r', 'a', 'f', 't', '\n'})
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the Raft port kept the connection open (read %d bytes)", len(got))
	}
	if cert != nil && len(got) > 0 {
		t.Fatalf("the Raft port answered with %q", got)
	}
	return raw.LocalAddr().String()
}

// servedSerial is the serial number of the certificate a node presents to a
// new connection at addr from cert.
func servedSerial(t *testing.T, addr string, certs *testCerts, cert *certFiles) *big.Int {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, certs.tlsConfig(cert))
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// certFiles is a certificate and key on disk.
type certFiles struct{ cert, key, ca string }

// testCerts are the client certificates the tests present: the region's
// own, and ones a node must refuse.
type testCerts struct {
	t                          *testing.T
	caFile                     string // the region's CA
	admin, alice, node1, node2 *certFiles
	foreignAdmin, expiredAdmin *certFiles
	otherRegionNode            *certFiles // a node of another region
	node7                      *certFiles // a node of the region, not in it
}

func newTestCerts(t *testing.T, r *nodetest.Region) *testCerts {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadCA(r.CADir())
	if err != nil {
		t.Fatal(err)
	}
	client := func(d string) *certFiles {
		return &certFiles{filepath.Join(d, pki.ClientCertFile), filepath.Join(d, pki.ClientKeyFile), filepath.Join(d, pki.CACertFile)}
	}
	nodeFiles := func(d string) *certFiles {
		return &certFiles{filepath.Join(d, pki.NodeCertFile), filepath.Join(d, pki.NodeKeyFile), filepath.Join(d, pki.CACertFile)}
	}
	c := &testCerts{
		t:      t,
		caFile: filepath.Join(r.CADir(), pki.CACertFile),
		admin:  client(r.AdminTLSDir()),
		node1:  nodeFiles(r.NodeCertDir(1)),
		node2:  nodeFiles(r.NodeCertDir(2)),
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ca.IssueClient(filepath.Join(dir, "alice"), pki.ClientCertRequest{Principal: "alice"}))
	c.alice = client(filepath.Join(dir, "alice"))
	// x509 times have whole seconds: a nanosecond's validity has passed by
	// the time the certificate is used.
	must(ca.IssueClient(filepath.Join(dir, "expired"), pki.ClientCertRequest{Principal: "admin", Roles: []string{"admin"}, Validity: time.Nanosecond}))
	c.expiredAdmin = client(filepath.Join(dir, "expired"))
	must(ca.IssueNode(filepath.Join(dir, "other-region"), pki.NodeCertRequest{Region: "other-1", NodeID: "node9"}))
	c.otherRegionNode = nodeFiles(filepath.Join(dir, "other-region"))
	must(ca.IssueNode(filepath.Join(dir, "node7"), pki.NodeCertRequest{Region: nodetest.RegionName, NodeID: "node7"}))
	c.node7 = nodeFiles(filepath.Join(dir, "node7"))
	must(pki.InitCA(filepath.Join(dir, "foreign-ca"), "a foreign CA", 0))
	foreign, err := pki.LoadCA(filepath.Join(dir, "foreign-ca"))
	must(err)
	must(foreign.IssueClient(filepath.Join(dir, "foreign"), pki.ClientCertRequest{Principal: "admin", Roles: []string{"admin"}}))
	c.foreignAdmin = client(filepath.Join(dir, "foreign"))
	return c
}

// tlsConfig presents cert (none if nil) and trusts the region's CA.
func (c *testCerts) tlsConfig(cert *certFiles) *tls.Config {
	c.t.Helper()
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if cert != nil {
		pair, err := tls.LoadX509KeyPair(cert.cert, cert.key)
		if err != nil {
			c.t.Fatal(err)
		}
		// Presented whatever CAs the server asks for; Certificates would
		// withhold a certificate of another CA.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return cfg
}

func (c *testCerts) client(cert *certFiles) credentials.TransportCredentials {
	return credentials.NewTLS(c.tlsConfig(cert))
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// waitForLogLine waits until one line of the log contains every part of want.
func waitForLogLine(t *testing.T, l *testlog.Buffer, want ...string) {
	t.Helper()
	nodetest.WaitFor(t, 10*time.Second, fmt.Sprintf("a log line with %q", want), func() bool {
		return l.HasLine(0, want...)
	})
}

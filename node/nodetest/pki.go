package nodetest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/transport/pki"
)

// testPKI is a region's cluster CA and the client certificates issued so
// far, all under the region's temporary directory.
type testPKI struct {
	t   testing.TB
	dir string
	ca  *pki.CA

	mu      sync.Mutex
	clients map[string]string // "principal roles" → certificate directory
}

func newTestPKI(t testing.TB, dir string) *testPKI {
	t.Helper()
	caDir := filepath.Join(dir, "ca")
	if err := pki.InitCA(caDir, "Trent test CA", 0); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(caDir)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, dir: dir, ca: ca, clients: map[string]string{}}
}

// clientDir is a directory with client.crt, client.key and ca.crt for
// principal with roles, issued on first use.
func (p *testPKI) clientDir(principal string, roles []string) string {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	key := principal + " " + strings.Join(roles, ",")
	if dir, ok := p.clients[key]; ok {
		return dir
	}
	dir := filepath.Join(p.dir, "clients", fmt.Sprintf("%d-%s", len(p.clients), principal))
	if err := p.ca.IssueClient(dir, pki.ClientCertRequest{Principal: principal, Roles: roles}); err != nil {
		p.t.Fatalf("issue client certificate for %s: %v", principal, err)
	}
	p.clients[key] = dir
	return dir
}

// CADir is the directory of the region's cluster CA (ca.crt, ca.key), for
// tests that issue certificates of their own with pki.LoadCA.
func (r *Region) CADir() string { return filepath.Join(r.pki.dir, "ca") }

// AdminTLSDir holds the admin client certificate (principal "admin", role
// "admin") as kmsctl --tls-dir wants it: client.crt, client.key, ca.crt.
func (r *Region) AdminTLSDir() string {
	return r.pki.clientDir(pki.DevAdminPrincipal, []string{pki.DevAdminRole})
}

// NodeCertDir is the directory holding node i's node.crt, node.key and
// ca.crt; issuing into it rotates the node's certificate.
func (r *Region) NodeCertDir(i int) string { return filepath.Dir(r.cfgs[i].TLSCertFile) }

// IssueNodeCert issues a certificate of the region for cfg.NodeID
// (hosts 127.0.0.1 and localhost) and points cfg's TLS files at it: for
// nodes a test starts itself, such as a joiner.
func (r *Region) IssueNodeCert(cfg *node.Config) {
	r.t.Helper()
	dir := filepath.Join(r.pki.dir, "certs", r.opts.Region, cfg.NodeID)
	req := pki.NodeCertRequest{Region: r.opts.Region, NodeID: cfg.NodeID, Hosts: []string{"127.0.0.1", "localhost"}}
	if err := r.pki.ca.IssueNode(dir, req); err != nil {
		r.t.Fatalf("issue node certificate for %s: %v", cfg.NodeID, err)
	}
	cfg.TLSCertFile = filepath.Join(dir, pki.NodeCertFile)
	cfg.TLSKeyFile = filepath.Join(dir, pki.NodeKeyFile)
	cfg.TLSCAFile = filepath.Join(dir, pki.CACertFile)
}

// DialTLS connects to a node at addr (HOST:PORT) with the client
// certificate in clientDir (client.crt, client.key, ca.crt), as kmsctl does.
func DialTLS(addr, clientDir string) (*grpc.ClientConn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	r, err := pki.NewReloader(filepath.Join(clientDir, pki.ClientCertFile), filepath.Join(clientDir, pki.ClientKeyFile),
		filepath.Join(clientDir, pki.CACertFile), nil, -1)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(r.ClientConfig(host))))
}

package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Development layout under a data directory: DATA/tls/ca holds the CA,
// DATA/tls/node the node's certificate, DATA/tls/admin the admin client
// certificate (principal "admin", role "admin") that kmsctl uses.
const (
	DevTLSDir         = "tls"
	DevCADir          = "ca"
	DevNodeDir        = "node"
	DevAdminDir       = "admin"
	DevAdminPrincipal = "admin"
	DevAdminRole      = "admin"
)

// devRenewBefore: DevBootstrap reissues a development certificate that
// expires sooner than this.
const devRenewBefore = 30 * 24 * time.Hour

// DevBootstrap prepares mutual TLS for -dev and returns DATA/tls. When
// DATA/tls is absent it creates, in a temporary directory renamed into place
// (so DATA/tls is complete or absent), a CA in DATA/tls/ca, a node
// certificate for region/nodeID and hosts in DATA/tls/node, and an admin
// client certificate in DATA/tls/admin. When DATA/tls exists it leaves it
// alone, except that it fails if the node certificate is for another node,
// and reissues the node certificate (same key path, new key) if it does not
// cover every host or is about to expire, and the admin certificate if it is
// about to expire.
func DevBootstrap(dataDir, region, nodeID string, hosts []string) (tlsDir string, err error) {
	if err := ValidateRegion(region); err != nil {
		return "", err
	}
	if err := ValidateNodeID(nodeID); err != nil {
		return "", err
	}
	if _, _, err := sanList(hosts); err != nil {
		return "", err
	}
	tlsDir = filepath.Join(dataDir, DevTLSDir)
	if _, err := os.Stat(tlsDir); err == nil {
		return tlsDir, devRefresh(tlsDir, region, nodeID, hosts)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dataDir, dirPerm); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dataDir, ".tls-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone after a successful rename
	if err := InitCA(filepath.Join(tmp, DevCADir), "Trent development CA", 0); err != nil {
		return "", err
	}
	ca, err := LoadCA(filepath.Join(tmp, DevCADir))
	if err != nil {
		return "", err
	}
	if err := ca.IssueNode(filepath.Join(tmp, DevNodeDir), NodeCertRequest{Region: region, NodeID: nodeID, Hosts: hosts}); err != nil {
		return "", err
	}
	if err := ca.IssueClient(filepath.Join(tmp, DevAdminDir), ClientCertRequest{Principal: DevAdminPrincipal, Roles: []string{DevAdminRole}}); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, tlsDir); err != nil {
		if _, statErr := os.Stat(tlsDir); statErr == nil {
			// Another process got there first; use its directory.
			return tlsDir, devRefresh(tlsDir, region, nodeID, hosts)
		}
		return "", err
	}
	return tlsDir, syncDir(dataDir)
}

func devRefresh(tlsDir, region, nodeID string, hosts []string) error {
	now := time.Now()
	nodeDir := filepath.Join(tlsDir, DevNodeDir)
	leaf, err := readLeaf(filepath.Join(nodeDir, NodeCertFile))
	if err != nil {
		return fmt.Errorf("%s exists but: %w (remove it to start over)", tlsDir, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(nodeDir, NodeCertFile), err)
	}
	if want := (Identity{Kind: KindNode, Region: region, NodeID: nodeID}); !sameIdentity(id, want) {
		return fmt.Errorf("%s holds the certificate of %s, not %s (remove %s to start over)",
			nodeDir, id, want, tlsDir)
	}
	renewNode := now.Add(devRenewBefore).After(leaf.NotAfter)
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			renewNode = true
		}
	}
	adminDir := filepath.Join(tlsDir, DevAdminDir)
	admin, err := readLeaf(filepath.Join(adminDir, ClientCertFile))
	renewAdmin := err != nil || now.Add(devRenewBefore).After(admin.NotAfter)
	if !renewNode && !renewAdmin {
		return nil
	}
	ca, err := LoadCA(filepath.Join(tlsDir, DevCADir))
	if err != nil {
		return err
	}
	if renewNode {
		all := append([]string{}, hosts...)
		all = append(all, leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			all = append(all, ip.String())
		}
		if err := ca.IssueNode(nodeDir, NodeCertRequest{Region: region, NodeID: nodeID, Hosts: all}); err != nil {
			return err
		}
	}
	if renewAdmin {
		if err := ca.IssueClient(adminDir, ClientCertRequest{Principal: DevAdminPrincipal, Roles: []string{DevAdminRole}}); err != nil {
			return err
		}
	}
	return nil
}

func readLeaf(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs[0], nil
}

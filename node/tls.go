package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/transport/pki"
)

// devRegion is the region of a development node that names none.
const devRegion = "local"

// errNoTLS: neither certificate files nor dev mode. Every connection is
// mutual TLS, so a node cannot start without a certificate.
var errNoTLS = errors.New("no TLS certificate: every connection is mutual TLS, so a node needs its " +
	"certificate and key and the cluster CA (kmsd -tls-cert FILE -tls-key FILE -tls-ca FILE; " +
	"create them with `kmsctl ca init` and `kmsctl ca issue-node`), or dev mode (kmsd -dev) to create its own")

func (c *Config) validateTLS() error {
	var missing []string
	for _, f := range []struct{ value, flag string }{{c.TLSCertFile, "-tls-cert"}, {c.TLSKeyFile, "-tls-key"}, {c.TLSCAFile, "-tls-ca"}} {
		if f.value == "" {
			missing = append(missing, f.flag)
		}
	}
	switch {
	case c.DevTLS && len(missing) < 3:
		return errors.New("dev mode creates its own TLS certificates under the data dir; drop -tls-cert, -tls-key and -tls-ca")
	case c.DevTLS:
		return nil
	case len(missing) == 3:
		return errNoTLS
	case len(missing) > 0:
		return fmt.Errorf("TLS: %s missing; a node needs its certificate (-tls-cert), its key (-tls-key) and the cluster CA (-tls-ca)",
			strings.Join(missing, " and "))
	}
	return nil
}

// openTLS loads the node's certificate, creating a development CA and
// certificates under DataDir/tls first in dev mode, and checks that it is the
// certificate of node nodeID (if known yet) of cfg.Region (if set). The
// certificate's identity is then the node's id and region.
func openTLS(cfg Config, nodeID string, remembered identity) (*pki.Reloader, pki.Identity, error) {
	certFile, keyFile, caFile := cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile
	hosts := hostsOf(cfg.GRPCAddr, cfg.RaftAddr, remembered.GRPCAddr, remembered.RaftAddr)
	if cfg.DevTLS {
		dir, err := pki.DevBootstrap(cfg.DataDir, cfg.Region, nodeID, hosts)
		if err != nil {
			return nil, pki.Identity{}, fmt.Errorf("dev TLS: %w", err)
		}
		nodeDir := filepath.Join(dir, pki.DevNodeDir)
		certFile, keyFile, caFile = filepath.Join(nodeDir, pki.NodeCertFile), filepath.Join(nodeDir, pki.NodeKeyFile), filepath.Join(nodeDir, pki.CACertFile)
	}
	logger := cfg.Logger.With("component", "tls")
	r, err := pki.NewReloader(certFile, keyFile, caFile, logger, cfg.TLSPollInterval)
	if err != nil {
		return nil, pki.Identity{}, fmt.Errorf("TLS certificate: %w", err)
	}
	id := r.Identity()
	if err := checkNodeCertificate(id, certFile, nodeID, cfg.Region); err != nil {
		r.Close()
		return nil, pki.Identity{}, err
	}
	for _, h := range hosts {
		if r.Certificate().VerifyHostname(h) != nil {
			logger.Warn("the node certificate does not name a host this node listens on; nodes dialling it there will refuse it",
				"host", h, "cert", certFile)
		}
	}
	return r, id, nil
}

func checkNodeCertificate(id pki.Identity, certFile, nodeID, region string) error {
	switch {
	case id.Kind != pki.KindNode:
		return fmt.Errorf("%s is the certificate of %s, not of a node; issue one with `kmsctl ca issue-node`", certFile, id)
	case nodeID != "" && id.NodeID != nodeID:
		return fmt.Errorf("this node is %q but its certificate %s (%s) is for node %q", nodeID, certFile, id, id.NodeID)
	case region != "" && id.Region != region:
		return fmt.Errorf("region %q does not match the certificate %s (%s), which is for region %q", region, certFile, id, id.Region)
	}
	return nil
}

// hostsOf lists the hosts of addresses, leaving out empty and unspecified
// ones (0.0.0.0 names no host a peer could verify).
func hostsOf(addrs ...string) []string {
	var hosts []string
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			continue
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			continue
		}
		hosts = append(hosts, host)
	}
	return hosts
}

// openRaftTransport listens on addr and returns Raft's transport over mutual
// TLS: only nodes of region holding a certificate from the cluster CA get
// through, in either direction.
func openRaftTransport(addr string, r *pki.Reloader, region string, logger *slog.Logger) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft listener: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft address %s: listen on a specific address; peers dial the address the node listens on", addr)
	}
	stream := pki.NewStreamLayer(ln, r, region, logger.With("component", "raft-tls"))
	return cluster.NewStreamTransport(stream, logger.With("component", "raft")), nil
}

package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
)

// ErrPeerRefused: the peer's certificate is valid but its identity is not
// one this connection accepts.
var ErrPeerRefused = errors.New("peer refused")

// PeerOption narrows which verified peers a config accepts.
type PeerOption func(*peerPolicy)

// peerPolicy: the zero value accepts any identity. A region or node id that
// is set is compared even when empty, so RequireRegion("") refuses everyone
// rather than accepting every region.
type peerPolicy struct {
	nodesOnly bool
	regionSet bool
	region    string
	nodeIDSet bool
	nodeID    string
}

// RequireNode accepts node certificates only (any region).
func RequireNode() PeerOption { return func(p *peerPolicy) { p.nodesOnly = true } }

// RequireRegion accepts node certificates of region only.
func RequireRegion(region string) PeerOption {
	return func(p *peerPolicy) { p.nodesOnly, p.regionSet, p.region = true, true, region }
}

// RequireNodeID accepts only the certificate of node nodeID of region.
func RequireNodeID(region, nodeID string) PeerOption {
	return func(p *peerPolicy) {
		p.nodesOnly, p.regionSet, p.region, p.nodeIDSet, p.nodeID = true, true, region, true, nodeID
	}
}

func policyOf(opts []PeerOption) peerPolicy {
	var p peerPolicy
	for _, o := range opts {
		o(&p)
	}
	return p
}

func (p peerPolicy) check(id Identity) error {
	switch {
	case p.nodesOnly && id.Kind != KindNode:
		return fmt.Errorf("%w: %s is not a node", ErrPeerRefused, id)
	case p.regionSet && id.Region != p.region:
		return fmt.Errorf("%w: %s is not a node of region %q", ErrPeerRefused, id, p.region)
	case p.nodeIDSet && id.NodeID != p.nodeID:
		return fmt.Errorf("%w: %s is not node %q", ErrPeerRefused, id, p.nodeID)
	}
	return nil
}

// ServerConfig is a TLS 1.3-only server config that requires a client
// certificate chaining to the current CA file and carrying a Trent identity
// (PeerIdentity then works on the connection state), narrowed further by
// opts. Each handshake picks up the current certificate and CA through
// GetConfigForClient; session tickets are off, so every connection is verified
// in full. Refusals decided in its callbacks (no TLS 1.3 offered, identity
// missing or not allowed) are logged with the remote address. Refusals
// crypto/tls decides before them (not TLS, no or untrusted or expired
// client certificate) are only returned by the handshake: its caller must
// log them.
func (r *Reloader) ServerConfig(opts ...PeerOption) *tls.Config {
	return r.serverConfig(policyOf(opts), true)
}

func (r *Reloader) serverConfig(pol peerPolicy, logRefusals bool) *tls.Config {
	// The outer config is already strict, in case a caller drops
	// GetConfigForClient; it pins the CA current at creation.
	cfg := r.connServerConfig(r.cur.Load(), pol, "", false)
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.cur.Load().cert, nil }
	cfg.Certificates = nil
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		remote := remoteAddr(hello.Conn)
		if !slices.Contains(hello.SupportedVersions, tls.VersionTLS13) {
			err := errors.New("client does not offer TLS 1.3")
			if logRefusals {
				r.logger.Warn("tls: connection refused", "remote", remote, "reason", err)
			}
			return nil, err
		}
		return r.connServerConfig(r.cur.Load(), pol, remote, logRefusals), nil
	}
	return cfg
}

func (r *Reloader) connServerConfig(m *material, pol peerPolicy, remote string, logRefusals bool) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{*m.cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              m.pool,
		SessionTicketsDisabled: true,
		Time:                   r.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			id, err := PeerIdentity(cs)
			if err == nil {
				err = pol.check(id)
			}
			if err != nil && logRefusals {
				r.logger.Warn("tls: connection refused", "remote", remote, "reason", err)
			}
			return err
		},
	}
}

// ClientConfig is a TLS 1.3-only client config that presents the current
// certificate and accepts only a server whose certificate chains to the
// current CA file, is valid for server authentication, names serverName (DNS
// name or IP address) and is a node certificate, narrowed further by opts (e.g. RequireRegion for
// node-to-node traffic). Refusals are logged with the server name.
//
// The server is verified in VerifyConnection rather than by crypto/tls, so
// that a rotated CA file applies to the next handshake; that is why
// InsecureSkipVerify is set, and why PeerIdentity does not work on the
// client side of these connections.
func (r *Reloader) ClientConfig(serverName string, opts ...PeerOption) *tls.Config {
	return r.clientConfig(serverName, policyOf(opts), true)
}

func (r *Reloader) clientConfig(serverName string, pol peerPolicy, logRefusals bool) *tls.Config {
	pol.nodesOnly = true // only node certificates may serve
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.cur.Load().cert, nil
		},
		InsecureSkipVerify: true, // verified in VerifyConnection against the current CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			name := serverName
			if name == "" {
				name = cs.ServerName // filled in by the caller (gRPC does) and sent as SNI
			}
			err := r.verifyServer(cs, name, pol)
			if err != nil && logRefusals {
				r.logger.Warn("tls: server refused", "server", name, "reason", err)
			}
			return err
		},
	}
}

func (r *Reloader) verifyServer(cs tls.ConnectionState, serverName string, pol peerPolicy) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	if serverName == "" {
		return errors.New("no server name to verify the server certificate against")
	}
	m := r.cur.Load()
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         m.pool,
		Intermediates: inter,
		DNSName:       serverName,
		CurrentTime:   r.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return err
	}
	return pol.check(id)
}

func remoteAddr(c net.Conn) string {
	if c == nil || c.RemoteAddr() == nil {
		return ""
	}
	return c.RemoteAddr().String()
}

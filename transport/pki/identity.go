package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ErrNoIdentity: a certificate carries no Trent identity, more than one, or a
// malformed one; or a connection has no verified peer certificate.
var ErrNoIdentity = errors.New("no trent identity")

// URI SAN layout.
const (
	uriScheme    = "trent"
	uriNode      = "node"      // trent://node/REGION/ID
	uriPrincipal = "principal" // trent://principal/NAME
	uriRole      = "role"      // trent://role/ROLE
)

// Kind says whether an identity is a node of a region or a client principal.
type Kind int

// Identity kinds. The zero Kind is no identity.
const (
	KindNode Kind = iota + 1
	KindPrincipal
)

func (k Kind) String() string {
	switch k {
	case KindNode:
		return "node"
	case KindPrincipal:
		return "principal"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Identity is who a certificate speaks for. A node has Region and NodeID; a
// principal has Principal and, optionally, Roles.
type Identity struct {
	Kind      Kind
	Principal string
	Roles     []string
	Region    string
	NodeID    string
}

// String is the identity's URI: trent://node/REGION/ID or
// trent://principal/NAME (roles are not shown).
func (id Identity) String() string {
	switch id.Kind {
	case KindNode:
		return nodeURI(id.Region, id.NodeID).String()
	case KindPrincipal:
		return principalURI(id.Principal).String()
	default:
		return "<no identity>"
	}
}

// HasRole reports whether a principal identity carries role.
func (id Identity) HasRole(role string) bool { return slices.Contains(id.Roles, role) }

func nodeURI(region, nodeID string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: uriNode, Path: "/" + region + "/" + nodeID}
}

func principalURI(name string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: uriPrincipal, Path: "/" + name}
}

func roleURI(role string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: uriRole, Path: "/" + role}
}

// IdentityOf reads the Trent identity from a certificate's URI SANs: exactly
// one trent://node/REGION/ID or exactly one trent://principal/NAME (the
// latter with any number of trent://role/ROLE). Any other trent:// URI, a
// malformed one, or roles on a node certificate is an error wrapping
// ErrNoIdentity. URIs of other schemes are ignored. IdentityOf does not verify
// the certificate; callers pass verified certificates only.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	var ids []Identity
	var roles []string
	for _, u := range cert.URIs {
		if u.Scheme != uriScheme {
			continue
		}
		bad := func(reason string) (Identity, error) {
			return Identity{}, fmt.Errorf("%w: URI %q: %s", ErrNoIdentity, u.String(), reason)
		}
		if u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery ||
			!strings.HasPrefix(u.Path, "/") {
			return bad("not of the form trent://KIND/NAME")
		}
		parts := strings.Split(u.Path[1:], "/")
		var canonical *url.URL
		switch u.Host {
		case uriNode:
			if len(parts) != 2 {
				return bad("want trent://node/REGION/ID")
			}
			if err := ValidateRegion(parts[0]); err != nil {
				return bad(err.Error())
			}
			if err := ValidateNodeID(parts[1]); err != nil {
				return bad(err.Error())
			}
			ids = append(ids, Identity{Kind: KindNode, Region: parts[0], NodeID: parts[1]})
			canonical = nodeURI(parts[0], parts[1])
		case uriPrincipal:
			if len(parts) != 1 {
				return bad("want trent://principal/NAME")
			}
			if err := ValidatePrincipal(parts[0]); err != nil {
				return bad(err.Error())
			}
			ids = append(ids, Identity{Kind: KindPrincipal, Principal: parts[0]})
			canonical = principalURI(parts[0])
		case uriRole:
			if len(parts) != 1 {
				return bad("want trent://role/ROLE")
			}
			if err := ValidateRole(parts[0]); err != nil {
				return bad(err.Error())
			}
			if !slices.Contains(roles, parts[0]) {
				roles = append(roles, parts[0])
			}
			canonical = roleURI(parts[0])
		default:
			return bad("unknown kind")
		}
		if canonical.String() != u.String() {
			return bad("not in canonical form")
		}
	}
	switch {
	case len(ids) == 0:
		return Identity{}, fmt.Errorf("%w: certificate %q has no trent://node or trent://principal URI", ErrNoIdentity, cert.Subject.CommonName)
	case len(ids) > 1:
		return Identity{}, fmt.Errorf("%w: certificate %q has %d identity URIs, want one", ErrNoIdentity, cert.Subject.CommonName, len(ids))
	}
	id := ids[0]
	if len(roles) > 0 {
		if id.Kind != KindPrincipal {
			return Identity{}, fmt.Errorf("%w: node certificate %q carries roles", ErrNoIdentity, cert.Subject.CommonName)
		}
		id.Roles = roles
	}
	return id, nil
}

// PeerIdentity is the identity of the peer's verified leaf certificate. It
// fails with ErrNoIdentity when crypto/tls did not verify the peer's chain
// (no VerifiedChains): that is the case on the server side of ServerConfig,
// which always verifies, but not on the client side of ClientConfig, which
// verifies the server in VerifyConnection and enforces its options there.
func PeerIdentity(state tls.ConnectionState) (Identity, error) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: peer certificate not verified", ErrNoIdentity)
	}
	return IdentityOf(state.VerifiedChains[0][0])
}

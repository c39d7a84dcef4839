package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// certWithURIs makes a self-signed certificate carrying uris, to feed
// IdentityOf shapes IssueNode and IssueClient never produce.
func certWithURIs(t *testing.T, uris ...string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "crafted"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIdentityOf(t *testing.T) {
	good := []struct {
		uris []string
		want string
	}{
		{[]string{"trent://node/eu-1/n1"}, "trent://node/eu-1/n1"},
		{[]string{"spiffe://example.org/x", "trent://principal/bob"}, "trent://principal/bob"},
		{[]string{"trent://role/r", "trent://principal/bob"}, "trent://principal/bob"},
	}
	for _, g := range good {
		id, err := IdentityOf(certWithURIs(t, g.uris...))
		if err != nil || id.String() != g.want {
			t.Errorf("IdentityOf(%v) = %v, %v; want %s", g.uris, id, err, g.want)
		}
	}
	bad := [][]string{
		nil,
		{"spiffe://example.org/x"},
		{"trent://role/admin"},
		{"trent://principal/a", "trent://principal/b"},
		{"trent://node/eu-1/n1", "trent://principal/a"},
		{"trent://node/eu-1/n1", "trent://node/eu-1/n1"},
		{"trent://node/eu-1/n1", "trent://role/admin"},
		{"trent://node/eu-1"},
		{"trent://node/EU-1/n1"},
		{"trent://node/eu-1/n1/extra"},
		{"trent://principal/"},
		{"trent://principal/a/b"},
		{"trent://principal/a?x=1"},
		{"trent://principal/a#frag"},
		{"trent://user@principal/a"},
		{"trent://principal:443/a"},
		{"trent://principal/%61"},
		{"trent://Principal/a"},
		{"trent://admin/a"},
		{"trent:principal/a"},
		{"trent://principal/a", "trent://role/a b"},
	}
	for _, uris := range bad {
		if id, err := IdentityOf(certWithURIs(t, uris...)); !errors.Is(err, ErrNoIdentity) {
			t.Errorf("IdentityOf(%v) = %v, %v; want ErrNoIdentity", uris, id, err)
		}
	}
	if _, err := IdentityOf(nil); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("IdentityOf(nil): %v", err)
	}
}

func TestPeerIdentityNeedsVerifiedChain(t *testing.T) {
	c := certWithURIs(t, "trent://principal/bob")
	if _, err := PeerIdentity(tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("unverified peer certificate accepted: %v", err)
	}
	id, err := PeerIdentity(tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}})
	if err != nil || id.Principal != "bob" {
		t.Fatalf("PeerIdentity = %v, %v", id, err)
	}
}

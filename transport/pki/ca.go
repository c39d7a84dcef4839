package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"
)

// ErrExists: InitCA found a CA certificate or key in the directory.
var ErrExists = errors.New("CA already exists")

// Default validities, used when a request's Validity is zero.
const (
	DefaultCAValidity     = 10 * 365 * 24 * time.Hour
	DefaultNodeValidity   = 365 * 24 * time.Hour
	DefaultClientValidity = 365 * 24 * time.Hour
)

// backdate is subtracted from NotBefore to tolerate clock skew between the
// issuing host and the verifying ones.
const backdate = 5 * time.Minute

// InitCA creates a cluster CA in dir: dir/ca.crt and dir/ca.key (ECDSA P-256,
// PKCS#8, mode 0600), self-signed, valid for validity (DefaultCAValidity if
// zero), usable only to sign end-entity certificates. It refuses with an error
// wrapping ErrExists when either file is already there.
func InitCA(dir string, name string, validity time.Duration) error {
	return initCA(dir, name, validity, time.Now())
}

func initCA(dir, name string, validity time.Duration, now time.Time) error {
	if name == "" {
		name = "Trent CA"
	}
	if len(name) > 64 || !utf8.ValidString(name) {
		return fmt.Errorf("CA name %q: must be valid UTF-8, at most 64 bytes", name)
	}
	validity, err := validityOr(validity, DefaultCAValidity)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s", ErrExists, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Trent"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, keyPEM, keyPerm); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, encodeCert(der), certPerm); err != nil {
		os.Remove(keyPath)
		return err
	}
	return nil
}

// CA is a loaded cluster CA. Its private key never leaves it: String and
// GoString show the certificate only.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	now     func() time.Time // tests issue certificates "in the past" through it
}

// LoadCA reads dir/ca.crt and dir/ca.key and checks that they belong
// together and that the certificate is a CA.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s: holds %d certificates, want 1", filepath.Join(dir, CACertFile), len(certs))
	}
	cert := certs[0]
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: not a CA certificate", filepath.Join(dir, CACertFile))
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", filepath.Join(dir, CAKeyFile), filepath.Join(dir, CACertFile))
	}
	return &CA{cert: cert, certPEM: encodeCert(cert.Raw), key: key, now: time.Now}, nil
}

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

func (ca *CA) String() string {
	return fmt.Sprintf("CA(%q, expires %s)", ca.cert.Subject.CommonName, ca.cert.NotAfter.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the private key.
func (ca *CA) GoString() string { return ca.String() }

// NodeCertRequest asks for a node certificate.
type NodeCertRequest struct {
	Region, NodeID string
	// Hosts are the DNS names and IP addresses the node is reached at;
	// localhost and 127.0.0.1 are always added.
	Hosts []string
	// Validity is DefaultNodeValidity when zero; it is cut at the CA's
	// expiry.
	Validity time.Duration
}

// IssueNode writes outDir/node.crt, outDir/node.key (0600) and outDir/ca.crt
// for a node: usable as TLS server and client, URI SAN
// trent://node/REGION/ID, DNS and IP SANs from Hosts. Existing files are
// replaced atomically one by one, so issuing into a running node's directory
// rotates its certificate.
func (ca *CA) IssueNode(outDir string, req NodeCertRequest) error {
	if err := ValidateRegion(req.Region); err != nil {
		return err
	}
	if err := ValidateNodeID(req.NodeID); err != nil {
		return err
	}
	dns, ips, err := sanList(req.Hosts)
	if err != nil {
		return err
	}
	validity, err := validityOr(req.Validity, DefaultNodeValidity)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.NodeID, OrganizationalUnit: []string{req.Region}, Organization: []string{"Trent"}},
		DNSNames:    dns,
		URIs:        []*url.URL{nodeURI(req.Region, req.NodeID)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	certPEM, keyPEM, err := ca.issue(tmpl, validity)
	if err != nil {
		return err
	}
	return writePair(outDir, NodeCertFile, NodeKeyFile, certPEM, keyPEM, ca.certPEM)
}

// ClientCertRequest asks for a client certificate.
type ClientCertRequest struct {
	Principal string
	Roles     []string
	// Validity is DefaultClientValidity when zero; it is cut at the CA's
	// expiry.
	Validity time.Duration
}

// IssueClient writes outDir/client.crt, outDir/client.key (0600) and
// outDir/ca.crt for a principal: usable as TLS client only, URI SANs
// trent://principal/NAME and trent://role/ROLE for each role.
func (ca *CA) IssueClient(outDir string, req ClientCertRequest) error {
	if err := ValidatePrincipal(req.Principal); err != nil {
		return err
	}
	uris := []*url.URL{principalURI(req.Principal)}
	var roles []string
	for i, r := range req.Roles {
		if err := checkName(fmt.Sprintf("roles[%d]", i), r); err != nil {
			return err
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
			uris = append(uris, roleURI(r))
		}
	}
	validity, err := validityOr(req.Validity, DefaultClientValidity)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: req.Principal, OrganizationalUnit: []string{"principal"}, Organization: []string{"Trent"}},
		URIs:        uris,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, keyPEM, err := ca.issue(tmpl, validity)
	if err != nil {
		return err
	}
	return writePair(outDir, ClientCertFile, ClientKeyFile, certPEM, keyPEM, ca.certPEM)
}

// issue fills serial and validity into tmpl, signs a fresh P-256 key and
// returns the PEM certificate and key.
func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	now := ca.now()
	if !now.Before(ca.cert.NotAfter) {
		return nil, nil, fmt.Errorf("CA %q expired at %s", ca.cert.Subject.CommonName, ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = now.Add(-backdate)
	if tmpl.NotBefore.Before(ca.cert.NotBefore) {
		tmpl.NotBefore = ca.cert.NotBefore
	}
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	tmpl.BasicConstraintsValid = true
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

func validityOr(v, def time.Duration) (time.Duration, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("validity %s: must not be negative", v)
	case v == 0:
		return def, nil
	default:
		return v, nil
	}
}

// newSerial is a random positive 127-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

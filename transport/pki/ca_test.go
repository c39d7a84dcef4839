package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestInitCARefusesOverwriteAndLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if err := InitCA(dir, "test CA", time.Hour); err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dir, CAKeyFile), 0o600)
	before, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err := InitCA(dir, "test CA", time.Hour); !errors.Is(err, ErrExists) {
		t.Fatalf("second InitCA: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if string(before) != string(after) {
		t.Fatal("second InitCA changed ca.key")
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Certificate()
	if !c.IsCA || c.Subject.CommonName != "test CA" || !c.MaxPathLenZero {
		t.Errorf("CA certificate: IsCA=%v CN=%q MaxPathLenZero=%v", c.IsCA, c.Subject.CommonName, c.MaxPathLenZero)
	}
	if d := time.Until(c.NotAfter); d > time.Hour || d < 50*time.Minute {
		t.Errorf("CA valid for %v more, want about 1h", d)
	}
	for _, s := range []string{fmt.Sprintf("%v", ca), fmt.Sprintf("%+v", ca), fmt.Sprintf("%#v", ca)} {
		if !strings.HasPrefix(s, `CA("test CA"`) {
			t.Errorf("formatted CA %q shows more than the certificate", s)
		}
	}

	// A key that does not belong to the certificate.
	other := filepath.Join(t.TempDir(), "other")
	if err := InitCA(other, "other", 0); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("LoadCA with a foreign key: %v", err)
	}
	if _, err := LoadCA(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadCA of an empty dir: %v", err)
	}
}

func TestIssueNode(t *testing.T) {
	_, ca := newTestCA(t, "test CA")
	dir := filepath.Join(t.TempDir(), "n1")
	err := ca.IssueNode(dir, NodeCertRequest{Region: "eu-1", NodeID: "n1", Hosts: []string{"kms1.example.com", "10.0.0.7", "::1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, filepath.Join(dir, NodeKeyFile), 0o600)
	if _, err := os.Stat(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	cert := readCert(t, filepath.Join(dir, NodeCertFile))
	id, err := IdentityOf(cert)
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != KindNode || id.Region != "eu-1" || id.NodeID != "n1" || id.Principal != "" || len(id.Roles) != 0 {
		t.Errorf("identity %+v", id)
	}
	if got := id.String(); got != "trent://node/eu-1/n1" {
		t.Errorf("String() = %q", got)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v", cert.ExtKeyUsage)
	}
	if !slices.Equal(cert.DNSNames, []string{"kms1.example.com", "localhost"}) {
		t.Errorf("DNSNames %v", cert.DNSNames)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"10.0.0.7", "::1", "127.0.0.1"}) {
		t.Errorf("IPAddresses %v", ips)
	}
	if cert.IsCA {
		t.Error("node certificate is a CA")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: poolOf(ca.Certificate()), DNSName: "kms1.example.com"}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestIssueClient(t *testing.T) {
	_, ca := newTestCA(t, "test CA")
	dir := issueClient(t, ca, "alice@example.com", "admin", "auditor", "admin")
	checkMode(t, filepath.Join(dir, ClientKeyFile), 0o600)
	cert := readCert(t, filepath.Join(dir, ClientCertFile))
	id, err := IdentityOf(cert)
	if err != nil {
		t.Fatal(err)
	}
	if id.Kind != KindPrincipal || id.Principal != "alice@example.com" || !slices.Equal(id.Roles, []string{"admin", "auditor"}) || id.Region != "" {
		t.Errorf("identity %+v", id)
	}
	if !id.HasRole("auditor") || id.HasRole("root") {
		t.Error("HasRole")
	}
	var uris []string
	for _, u := range cert.URIs {
		uris = append(uris, u.String())
	}
	want := []string{"trent://principal/alice@example.com", "trent://role/admin", "trent://role/auditor"}
	if !slices.Equal(uris, want) {
		t.Errorf("URIs %v, want %v", uris, want)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage %v, want client auth only", cert.ExtKeyUsage)
	}
	if len(cert.DNSNames)+len(cert.IPAddresses) != 0 {
		t.Errorf("client certificate names hosts: %v %v", cert.DNSNames, cert.IPAddresses)
	}
}

func TestValidity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	if err := InitCA(dir, "short", time.Hour); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "n")
	if err := ca.IssueNode(out, NodeCertRequest{Region: "eu-1", NodeID: "n1", Validity: 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := readCert(t, filepath.Join(out, NodeCertFile)).NotAfter; !got.Equal(ca.Certificate().NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", got, ca.Certificate().NotAfter)
	}
	if err := ca.IssueClient(out, ClientCertRequest{Principal: "a", Validity: -time.Hour}); err == nil {
		t.Error("negative validity accepted")
	}
	ca.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := ca.IssueClient(out, ClientCertRequest{Principal: "a"}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("issuing from an expired CA: %v", err)
	}
}

func TestNamesRejected(t *testing.T) {
	_, ca := newTestCA(t, "test CA")
	long := strings.Repeat("a", 129)
	cases := []struct {
		name  string
		issue func(dir string) error
		field string
	}{
		{"empty principal", func(d string) error { return ca.IssueClient(d, ClientCertRequest{}) }, "principal"},
		{"principal with slash", func(d string) error { return ca.IssueClient(d, ClientCertRequest{Principal: "a/b"}) }, "principal"},
		{"principal with space", func(d string) error { return ca.IssueClient(d, ClientCertRequest{Principal: "a b"}) }, "principal"},
		{"principal too long", func(d string) error { return ca.IssueClient(d, ClientCertRequest{Principal: long}) }, "principal"},
		{"principal dot-dot", func(d string) error { return ca.IssueClient(d, ClientCertRequest{Principal: ".."}) }, "principal"},
		{"bad role", func(d string) error {
			return ca.IssueClient(d, ClientCertRequest{Principal: "a", Roles: []string{"ok", "no:colon"}})
		}, "roles[1]"},
		{"uppercase region", func(d string) error { return ca.IssueNode(d, NodeCertRequest{Region: "EU-1", NodeID: "n1"}) }, "region"},
		{"empty region", func(d string) error { return ca.IssueNode(d, NodeCertRequest{NodeID: "n1"}) }, "region"},
		{"region too long", func(d string) error {
			return ca.IssueNode(d, NodeCertRequest{Region: strings.Repeat("r", 65), NodeID: "n1"})
		}, "region"},
		{"bad node id", func(d string) error { return ca.IssueNode(d, NodeCertRequest{Region: "eu-1", NodeID: "n#1"}) }, "node id"},
		{"empty node id", func(d string) error { return ca.IssueNode(d, NodeCertRequest{Region: "eu-1"}) }, "node id"},
		{"wildcard host", func(d string) error {
			return ca.IssueNode(d, NodeCertRequest{Region: "eu-1", NodeID: "n1", Hosts: []string{"a.example", "*.example.com"}})
		}, "hosts[1]"},
		{"host with port", func(d string) error {
			return ca.IssueNode(d, NodeCertRequest{Region: "eu-1", NodeID: "n1", Hosts: []string{"10.0.0.1:7000"}})
		}, "hosts[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			err := c.issue(dir)
			var ne *NameError
			if !errors.As(err, &ne) || !errors.Is(err, ErrInvalidName) {
				t.Fatalf("err = %v, want a *NameError", err)
			}
			if ne.Field != c.field || !strings.HasPrefix(err.Error(), c.field+" ") {
				t.Errorf("field %q (%v), want %q", ne.Field, err, c.field)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused request wrote %s", dir)
			}
		})
	}
	for _, ok := range []string{"a", "A.b_c-d@e", strings.Repeat("z", 128)} {
		if err := ValidatePrincipal(ok); err != nil {
			t.Errorf("ValidatePrincipal(%q): %v", ok, err)
		}
	}
	if err := ValidateRegion("us-east-1"); err != nil {
		t.Error(err)
	}
}

func TestSANsAlwaysIncludeLoopback(t *testing.T) {
	dns, ips, err := sanList(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dns, []string{"localhost"}) || len(ips) != 1 || !net.IP(ips[0].AsSlice()).Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("dns %v ips %v", dns, ips)
	}
}

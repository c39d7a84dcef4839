package pki

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// ErrInvalidName is wrapped by every *NameError.
var ErrInvalidName = errors.New("invalid name")

var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,128}$`)
	regionPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	dnsPattern    = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

// NameError reports a name that may not appear in a certificate. Field names
// the request field ("principal", "node id", "region", "roles[1]",
// "hosts[0]").
type NameError struct {
	Field  string
	Value  string
	Reason string
}

func (e *NameError) Error() string {
	v := e.Value
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return fmt.Sprintf("%s %q: %s", e.Field, v, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidName) hold.
func (e *NameError) Unwrap() error { return ErrInvalidName }

func checkName(field, v string) error {
	if !namePattern.MatchString(v) {
		return &NameError{Field: field, Value: v, Reason: "must be 1-128 characters of A-Z a-z 0-9 . _ @ -"}
	}
	if v == "." || v == ".." {
		return &NameError{Field: field, Value: v, Reason: `may not be "." or ".."`}
	}
	return nil
}

// ValidatePrincipal checks a client principal name: ^[A-Za-z0-9._@-]{1,128}$,
// and not "." or "..".
func ValidatePrincipal(name string) error { return checkName("principal", name) }

// ValidateNodeID checks a node id with the same rule as a principal name.
func ValidateNodeID(id string) error { return checkName("node id", id) }

// ValidateRole checks a role name with the same rule as a principal name.
func ValidateRole(role string) error { return checkName("role", role) }

// ValidateRegion checks a region name: ^[a-z0-9-]{1,64}$.
func ValidateRegion(region string) error {
	if !regionPattern.MatchString(region) {
		return &NameError{Field: "region", Value: region, Reason: "must be 1-64 characters of a-z 0-9 -"}
	}
	return nil
}

// sanList splits hosts into DNS names and IP addresses for a node
// certificate, always adding localhost and 127.0.0.1, dropping duplicates.
func sanList(hosts []string) (dns []string, ips []netip.Addr, err error) {
	seenDNS := map[string]bool{}
	seenIP := map[netip.Addr]bool{}
	add := func(field, h string) error {
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.Zone() != "" {
				return &NameError{Field: field, Value: h, Reason: "an IP address may not carry a zone"}
			}
			ip = ip.Unmap()
			if !seenIP[ip] {
				seenIP[ip] = true
				ips = append(ips, ip)
			}
			return nil
		}
		if len(h) > 253 || !dnsPattern.MatchString(h) {
			return &NameError{Field: field, Value: h, Reason: "must be an IP address or a DNS name (no wildcards)"}
		}
		h = strings.ToLower(h)
		if !seenDNS[h] {
			seenDNS[h] = true
			dns = append(dns, h)
		}
		return nil
	}
	for i, h := range hosts {
		if err := add(fmt.Sprintf("hosts[%d]", i), h); err != nil {
			return nil, nil, err
		}
	}
	_ = add("hosts", "localhost")
	_ = add("hosts", "127.0.0.1")
	return dns, ips, nil
}

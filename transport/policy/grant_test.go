package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func validGrant() Grant {
	return Grant{
		ID:                   "g-1",
		Name:                 "backup:nightly/v1",
		KeyID:                "k1",
		Grantee:              "app",
		RetiringPrincipal:    "ops",
		Operations:           []string{"Encrypt", "Decrypt", "DescribeKey"},
		Constraints:          &Constraints{EncryptionContextSubset: map[string]string{"app": "payments"}},
		Issuer:               "alice",
		CreationTimeUnixNano: 1_700_000_000_000_000_000,
	}
}

func TestValidateGrant(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Grant)
		field  string // "" = valid
		msg    string
	}{
		{"valid", func(*Grant) {}, "", ""},
		{"no constraints", func(g *Grant) { g.Constraints = nil; g.Operations = append(g.Operations, "Sign") }, "", ""},
		{"every operation", func(g *Grant) { g.Constraints = nil; g.Operations = GrantOperations }, "", ""},
		{"no name", func(g *Grant) { g.Name = "" }, "", ""},
		{"equals constraint", func(g *Grant) {
			g.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"a": "b"}}
		}, "", ""},
		{"constraints with management ops", func(g *Grant) { g.Operations = []string{"Decrypt", "CreateGrant", "RetireGrant", "DescribeKey"} }, "", ""},
		{"missing key", func(g *Grant) { g.KeyID = "" }, "KeyID", "missing"},
		{"empty grantee", func(g *Grant) { g.Grantee = "" }, "Grantee", "missing"},
		{"wildcard grantee", func(g *Grant) { g.Grantee = "app-*" }, "Grantee", "wildcard"},
		{"role grantee", func(g *Grant) { g.Grantee = "role/admin" }, "Grantee", "role/"},
		{"bad retiring principal", func(g *Grant) { g.RetiringPrincipal = "a b" }, "RetiringPrincipal", "white space"},
		{"no operations", func(g *Grant) { g.Operations = nil }, "Operations", "missing"},
		{"unknown operation", func(g *Grant) { g.Operations = []string{"Encrypt", "PutKeyPolicy"} }, "Operations[1]", `unknown operation "PutKeyPolicy"`},
		{"GenerateRandom is not a grant operation", func(g *Grant) { g.Operations = []string{"GenerateRandom"} }, "Operations[0]", "unknown operation"},
		{"kms: prefix", func(g *Grant) { g.Operations = []string{"kms:Encrypt"} }, "Operations[0]", "without the kms: prefix"},
		{"wrong case", func(g *Grant) { g.Operations = []string{"encrypt"} }, "Operations[0]", `did you mean "Encrypt"`},
		{"duplicate operation", func(g *Grant) { g.Operations = []string{"Encrypt", "Decrypt", "Encrypt"} }, "Operations[2]", "duplicate"},
		{"both constraints", func(g *Grant) {
			g.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"a": "b"}, EncryptionContextSubset: map[string]string{"a": "b"}}
		}, "Constraints", "not both"},
		{"empty constraints", func(g *Grant) { g.Constraints = &Constraints{EncryptionContextEquals: map[string]string{}} }, "Constraints", "empty"},
		{"empty constraint key", func(g *Grant) { g.Constraints = &Constraints{EncryptionContextSubset: map[string]string{"": "x"}} }, "Constraints.EncryptionContextSubset", "key is empty"},
		{"constraints on an op without context", func(g *Grant) { g.Operations = []string{"Decrypt", "Sign"} }, "Operations[1]", "takes no encryption context"},
		{"constraints on GenerateMac", func(g *Grant) { g.Operations = []string{"GenerateMac"} }, "Operations[0]", "takes no encryption context"},
		{"name with space", func(g *Grant) { g.Name = "my grant" }, "Name", "only letters"},
		{"name with dot", func(g *Grant) { g.Name = "a.b" }, "Name", "only letters"},
		{"name too long", func(g *Grant) { g.Name = strings.Repeat("a", 257) }, "Name", "256"},
		{"name at the limit", func(g *Grant) { g.Name = strings.Repeat("a", 256) }, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := validGrant()
			tc.change(&g)
			err := ValidateGrant(g)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("ValidateGrant: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("err = %v, want ErrInvalidGrant", err)
			}
			var ge *GrantError
			if !errors.As(err, &ge) || ge.Field != tc.field || !strings.Contains(ge.Msg, tc.msg) {
				t.Fatalf("err = %v, want field %q and %q", err, tc.field, tc.msg)
			}
		})
	}
}

func TestGrantAllows(t *testing.T) {
	g := validGrant()
	eq := validGrant()
	eq.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"app": "payments", "env": "prod"}}
	free := validGrant()
	free.Constraints = nil
	free.Operations = []string{"Encrypt", "Sign"}
	bad := validGrant()
	bad.Constraints = nil
	bad.Operations = []string{"PutKeyPolicy", "encrypt"}
	both := validGrant()
	both.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"a": "b"}, EncryptionContextSubset: map[string]string{"a": "b"}}

	r := func(principal, action string, ec ctx) Request {
		return Request{Caller: Caller{Principal: principal}, Action: action, Resource: arnK1, EncryptionContext: ec}
	}
	tests := []struct {
		name string
		g    Grant
		req  Request
		want bool
	}{
		{"subset exact", g, r("app", "kms:Encrypt", ctx{"app": "payments"}), true},
		{"subset with more pairs", g, r("app", "kms:Decrypt", ctx{"app": "payments", "x": "y"}), true},
		{"subset wrong value", g, r("app", "kms:Decrypt", ctx{"app": "orders"}), false},
		{"subset missing pair", g, r("app", "kms:Decrypt", ctx{"x": "y"}), false},
		{"subset no context", g, r("app", "kms:Decrypt", nil), false},
		{"subset key case-sensitive", g, r("app", "kms:Decrypt", ctx{"App": "payments"}), false},
		{"constraints do not apply to DescribeKey", g, r("app", "kms:DescribeKey", nil), true},
		{"equals exact", eq, r("app", "kms:Encrypt", ctx{"env": "prod", "app": "payments"}), true},
		{"equals superset", eq, r("app", "kms:Encrypt", ctx{"env": "prod", "app": "payments", "x": "y"}), false},
		{"equals subset", eq, r("app", "kms:Encrypt", ctx{"app": "payments"}), false},
		{"equals no context", eq, r("app", "kms:Encrypt", nil), false},
		{"other grantee", g, r("app2", "kms:Encrypt", ctx{"app": "payments"}), false},
		{"grantee is exact, not a pattern", g, r("APP", "kms:Encrypt", ctx{"app": "payments"}), false},
		{"operation not granted", g, r("app", "kms:ReEncryptFrom", ctx{"app": "payments"}), false},
		{"action case-insensitive", g, r("app", "KMS:encrypt", ctx{"app": "payments"}), true},
		{"action without kms:", g, r("app", "Encrypt", ctx{"app": "payments"}), false},
		{"other key", g, func() Request { q := r("app", "kms:Encrypt", ctx{"app": "payments"}); q.Resource = arnK2; return q }(), false},
		{"not an ARN", g, func() Request { q := r("app", "kms:Encrypt", ctx{"app": "payments"}); q.Resource = "k1"; return q }(), false},
		{"no constraints", free, r("app", "kms:Sign", nil), true},
		{"unknown operation in a stored grant never allows", bad, r("app", "kms:PutKeyPolicy", nil), false},
		{"lower-case operation in a stored grant never allows", bad, r("app", "kms:Encrypt", nil), false},
		{"both constraints fail closed", both, r("app", "kms:Encrypt", ctx{"a": "b"}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := GrantAllows(tc.g, tc.req); got != tc.want {
				t.Fatalf("GrantAllows = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCanRetire(t *testing.T) {
	g := validGrant()
	if !CanRetire(g, Caller{Principal: "ops"}) {
		t.Error("retiring principal cannot retire")
	}
	if CanRetire(g, Caller{Principal: "app"}) {
		t.Error("grantee without RetireGrant can retire")
	}
	g.Operations = append(g.Operations, "RetireGrant")
	if !CanRetire(g, Caller{Principal: "app"}) {
		t.Error("grantee with RetireGrant cannot retire")
	}
	if CanRetire(g, Caller{Principal: "mallory"}) || CanRetire(Grant{}, Caller{}) {
		t.Error("stranger can retire")
	}
}

func TestCheckChildGrant(t *testing.T) {
	parent := validGrant()
	parent.Operations = []string{"Encrypt", "Decrypt", "CreateGrant"}
	child := func(change func(*Grant)) Grant {
		c := validGrant()
		c.Grantee = "batch"
		c.Operations = []string{"Decrypt"}
		change(&c)
		return c
	}
	tests := []struct {
		name   string
		parent Grant
		child  Grant
		field  string
	}{
		{"same constraints", parent, child(func(*Grant) {}), ""},
		{"stricter subset", parent, child(func(c *Grant) { c.Constraints.EncryptionContextSubset["env"] = "prod" }), ""},
		{"equals containing the subset", parent, child(func(c *Grant) {
			c.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"app": "payments", "env": "x"}}
		}), ""},
		{"looser constraints", parent, child(func(c *Grant) { c.Constraints.EncryptionContextSubset = map[string]string{"env": "prod"} }), "Constraints"},
		{"no constraints", parent, child(func(c *Grant) { c.Constraints = nil }), "Constraints"},
		{"more operations", parent, child(func(c *Grant) { c.Operations = []string{"Decrypt", "ReEncryptFrom"} }), "Operations[1]"},
		{"other key", parent, child(func(c *Grant) { c.KeyID = "k2" }), "KeyID"},
		{"invalid child", parent, child(func(c *Grant) { c.Grantee = "" }), "Grantee"},
		{"parent without CreateGrant", validGrant(), child(func(*Grant) {}), "Operations"},
		{"parent equals: child must equal", func() Grant {
			p := parent
			p.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"app": "payments"}}
			return p
		}(), child(func(*Grant) {}), "Constraints.EncryptionContextEquals"},
		{"unconstrained parent", func() Grant { p := parent; p.Constraints = nil; return p }(), child(func(c *Grant) { c.Constraints = nil }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckChildGrant(tc.parent, tc.child)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ge *GrantError
			if !errors.As(err, &ge) || ge.Field != tc.field || !errors.Is(err, ErrInvalidGrant) {
				t.Fatalf("err = %v, want field %q", err, tc.field)
			}
		})
	}
}

func TestSameGrantRequest(t *testing.T) {
	a := validGrant()
	b := validGrant()
	b.ID, b.Issuer, b.CreationTimeUnixNano = "g-2", "bob", 1
	b.Operations = []string{"DescribeKey", "Decrypt", "Encrypt"}
	if !SameGrantRequest(a, b) {
		t.Fatal("identical requests differ")
	}
	for name, change := range map[string]func(*Grant){
		"name":        func(g *Grant) { g.Name = "other" },
		"no name":     func(g *Grant) { g.Name = "" },
		"key":         func(g *Grant) { g.KeyID = "k2" },
		"grantee":     func(g *Grant) { g.Grantee = "x" },
		"retiring":    func(g *Grant) { g.RetiringPrincipal = "" },
		"operations":  func(g *Grant) { g.Operations = []string{"Encrypt"} },
		"constraints": func(g *Grant) { g.Constraints = nil },
		"context":     func(g *Grant) { g.Constraints = &Constraints{EncryptionContextSubset: map[string]string{"app": "x"}} },
	} {
		c := validGrant()
		change(&c)
		if SameGrantRequest(a, c) || SameGrantRequest(c, a) {
			t.Errorf("%s: different requests are the same", name)
		}
	}
}

func hmacFuncs(key string) (func([]byte) []byte, func(msg, tag []byte) bool) {
	mac := func(msg []byte) []byte {
		h := hmac.New(sha256.New, []byte(key))
		h.Write(msg)
		return h.Sum(nil)
	}
	return mac, func(msg, tag []byte) bool { return hmac.Equal(mac(msg), tag) }
}

func TestGrantToken(t *testing.T) {
	mac, verify := hmacFuncs("region-secret")
	_, verifyOther := hmacFuncs("other-secret")
	g := validGrant()
	tok := EncodeGrantToken(g, mac)
	if strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q is not unpadded base64url", tok)
	}
	if EncodeGrantToken(g, mac) != tok {
		t.Error("token is not deterministic")
	}

	t.Run("round trip", func(t *testing.T) {
		got, err := DecodeGrantToken(tok, verify)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, g) {
			t.Fatalf("got %+v, want %+v", got, g)
		}
		eq := validGrant()
		eq.Constraints = &Constraints{EncryptionContextEquals: map[string]string{"a": "b"}}
		got, err = DecodeGrantToken(EncodeGrantToken(eq, mac), verify)
		if err != nil || !reflect.DeepEqual(got, eq) {
			t.Fatalf("equals grant: %+v, %v", got, err)
		}
	})

	t.Run("MAC covers a domain-separated message", func(t *testing.T) {
		var seen []byte
		EncodeGrantToken(g, func(msg []byte) []byte { seen = append([]byte(nil), msg...); return []byte{1} })
		if !strings.HasPrefix(string(seen), tokenLabel+"{") {
			t.Fatalf("MAC input %q lacks the label", seen)
		}
	})

	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	js, _ := json.Marshal(g)
	reencode := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	forge := func(v any) string { // a token with a valid MAC over arbitrary JSON
		b, _ := json.Marshal(v)
		return reencode(append(b, mac(append([]byte(tokenLabel), b...))...))
	}
	tampered := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return reencode(b)
	}
	bad := map[string]string{
		"empty":                 "",
		"not base64":            "!!!!",
		"padded":                tok + "=",
		"standard alphabet":     strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+/",
		"too long":              strings.Repeat("A", MaxGrantTokenLen+1),
		"tampered grantee":      reencode(append([]byte(strings.Replace(string(js), `"app"`, `"apq"`, 1)), raw[len(js):]...)),
		"tampered JSON byte":    tampered(10),
		"tampered MAC byte":     tampered(len(raw) - 1),
		"truncated MAC":         reencode(raw[:len(raw)-1]),
		"no MAC":                reencode(js),
		"MAC only":              reencode(raw[len(js):]),
		"not JSON":              reencode(append([]byte("[1]"), mac(append([]byte(tokenLabel), "[1]"...))...)),
		"unknown field":         forge(map[string]any{"ID": "g", "KeyID": "k1", "Grantee": "a", "Operations": []string{"Encrypt"}, "Admin": true}),
		"valid MAC, no ID":      forge(Grant{KeyID: "k1", Grantee: "a", Operations: []string{"Encrypt"}}),
		"valid MAC, invalid op": forge(Grant{ID: "g", KeyID: "k1", Grantee: "a", Operations: []string{"PutKeyPolicy"}}),
	}
	for name, tk := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeGrantToken(tk, verify); !errors.Is(err, ErrBadGrantToken) {
				t.Fatalf("err = %v, want ErrBadGrantToken", err)
			}
		})
	}
	t.Run("wrong MAC key", func(t *testing.T) {
		if _, err := DecodeGrantToken(tok, verifyOther); !errors.Is(err, ErrBadGrantToken) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("decoded grant allows only what it lists", func(t *testing.T) {
		// A token proves issuance only; whether the grant was since retired
		// or revoked is the caller's state, not the token's.
		got, err := DecodeGrantToken(tok, verify)
		if err != nil {
			t.Fatal(err)
		}
		req := Request{Caller: Caller{Principal: "app"}, Action: "kms:RetireGrant", Resource: arnK1}
		if GrantAllows(got, req) {
			t.Fatal("grant without RetireGrant allows RetireGrant")
		}
	})
}

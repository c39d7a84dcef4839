package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultPolicy(t *testing.T) {
	b := DefaultPolicy("alice")
	const want = `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "Enable creator and admin role full control",
      "Effect": "Allow",
      "Principal": {
        "Trent": [
          "alice",
          "role/admin"
        ]
      },
      "Action": "kms:*",
      "Resource": "*"
    }
  ]
}
`
	if string(b) != want {
		t.Fatalf("DefaultPolicy(alice) =\n%s\nwant\n%s", b, want)
	}
	if string(DefaultPolicy("alice")) != string(b) {
		t.Fatal("not deterministic")
	}
	p := mustParse(t, string(b))
	for _, a := range knownActions {
		if !strings.HasPrefix(a, "kms:") {
			continue
		}
		for _, c := range []Caller{{Principal: "alice"}, {Principal: "bob", Roles: []string{"admin"}}} {
			r := p.Evaluate(Request{Caller: c, Action: a, Resource: arnK1, EncryptionContext: ctx{"a": "b"}, ViaAlias: "alias/x"})
			if r.Decision != Allow || r.Sid != DefaultSid {
				t.Errorf("%+v %s: %+v", c, a, r)
			}
		}
		for _, c := range []Caller{{Principal: "bob"}, {Principal: "alic"}, {Principal: "bob", Roles: []string{"admins", "Admin"}}, {}} {
			if r := p.Evaluate(Request{Caller: c, Action: a, Resource: arnK1}); r.Decision != ImplicitDeny {
				t.Errorf("%+v %s: %+v", c, a, r)
			}
		}
	}
	if r := p.Evaluate(Request{Caller: Caller{Principal: "alice"}, Action: "trent:RemoveNode"}); r.Decision != ImplicitDeny {
		t.Errorf("default policy allows cluster actions: %+v", r)
	}
}

func TestDefaultPolicyOddCreators(t *testing.T) {
	for _, creator := range []string{"", "team-*", "a?", "role/admin", "a b", "x\x00"} {
		p := mustParse(t, string(DefaultPolicy(creator)))
		if strings.Contains(string(DefaultPolicy(creator)), `"`+creator+`",`) && creator != "" {
			t.Errorf("creator %q was put in the policy", creator)
		}
		if r := p.Evaluate(Request{Caller: Caller{Principal: "team-x"}, Action: "kms:Decrypt", Resource: arnK1}); r.Decision != ImplicitDeny {
			t.Errorf("creator %q: a wildcard creator grants others access", creator)
		}
		if r := p.Evaluate(Request{Caller: Caller{Principal: "z", Roles: []string{"admin"}}, Action: "kms:Decrypt", Resource: arnK1}); r.Decision != Allow {
			t.Errorf("creator %q: admin lost access", creator)
		}
	}
}

func TestValidatePrincipalName(t *testing.T) {
	for _, ok := range []string{"app", "team/app-1", "é", "a@b.c"} {
		if err := ValidatePrincipalName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a*", "?", "role/x", "a b", "a\tb", "\xff", strings.Repeat("a", 257)} {
		if err := ValidatePrincipalName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckLockout(t *testing.T) {
	alice := Caller{Principal: "alice"}
	admin := Caller{Principal: "bob", Roles: []string{"admin"}}
	tests := []struct {
		name   string
		policy string
		caller Caller
		ok     bool
	}{
		{"default policy, creator", string(DefaultPolicy("alice")), alice, true},
		{"default policy, admin", string(DefaultPolicy("alice")), admin, true},
		{"default policy, someone else", string(DefaultPolicy("carol")), alice, false},
		{"only data-plane actions", doc(`{"Effect":"Allow","Principal":{"Trent":"alice"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}`), alice, false},
		{"explicit PutKeyPolicy", doc(`{"Effect":"Allow","Principal":{"Trent":"alice"},"Action":"kms:PutKeyPolicy","Resource":"*"}`), alice, true},
		{"denied PutKeyPolicy", doc(
			`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
			`{"Effect":"Deny","Principal":{"Trent":"alice"},"Action":"kms:Put*","Resource":"*"}`), alice, false},
		{"only via an alias", doc(`{"Effect":"Allow","Principal":{"Trent":"alice"},"Action":"kms:*","Resource":"*","Condition":{"Null":{"kms:ViaAlias":"false"}}}`), alice, false},
		{"other key only", doc(`{"Effect":"Allow","Principal":{"Trent":"alice"},"Action":"kms:*","Resource":"arn:trent:kms:eu-1::key/k2"}`), alice, false},
		{"role grants it", doc(`{"Effect":"Allow","Principal":{"Trent":"role/admin"},"Action":"kms:*","Resource":"*"}`), admin, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLockout(mustParse(t, tc.policy), tc.caller, arnK1)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckLockout = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrLockout) {
				t.Fatalf("error %v does not wrap ErrLockout", err)
			}
		})
	}
	if err := CheckLockout(nil, alice, arnK1); !errors.Is(err, ErrLockout) {
		t.Fatalf("nil policy: %v", err)
	}
}

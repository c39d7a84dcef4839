package policy

import (
	"testing"
)

// typicalPolicy is a three-statement key policy of the usual shape: admins,
// an application constrained by encryption context, and a guard rail.
var typicalPolicy = doc(
	`{"Sid":"KeyAdmins","Effect":"Allow","Principal":{"Trent":["alice","role/admin"]},"Action":"kms:*","Resource":"*"}`,
	`{"Sid":"AppUse","Effect":"Allow","Principal":{"Trent":["payments-api","payments-batch"]},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"payments"}}}`,
	`{"Sid":"NoDeletion","Effect":"Deny","Principal":"*","Action":["kms:ScheduleKeyDeletion","kms:DisableKey"],"Resource":"*"}`,
)

func typicalRequest() Request {
	return Request{
		Caller:            Caller{Principal: "payments-batch", Roles: []string{"service"}},
		Action:            "kms:Decrypt",
		Resource:          "arn:trent:kms:eu-1::key/1234abcd-12ab-34cd-56ef-1234567890ab",
		EncryptionContext: map[string]string{"app": "payments", "tenant": "t-42"},
	}
}

func BenchmarkEvaluate(b *testing.B) {
	p := mustParse(b, typicalPolicy)
	for _, bc := range []struct {
		name string
		req  func() Request
		want Decision
	}{
		{"allow-by-context", typicalRequest, Allow},
		{"implicit-deny-wrong-context", func() Request {
			r := typicalRequest()
			r.EncryptionContext = map[string]string{"app": "orders"}
			return r
		}, ImplicitDeny},
		{"explicit-deny", func() Request {
			r := typicalRequest()
			r.Action = "kms:ScheduleKeyDeletion"
			return r
		}, ExplicitDeny},
		{"allow-admin-role", func() Request {
			r := typicalRequest()
			r.Caller = Caller{Principal: "bob", Roles: []string{"dev", "admin"}}
			r.Action = "kms:PutKeyPolicy"
			return r
		}, Allow},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := bc.req()
			if got := p.Evaluate(req).Decision; got != bc.want {
				b.Fatalf("Decision = %v, want %v", got, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Evaluate(req)
			}
		})
	}
}

func BenchmarkGrantAllows(b *testing.B) {
	g := validGrant()
	req := typicalRequest()
	req.Caller.Principal = "app"
	req.Resource = arnK1
	b.ReportAllocs()
	for b.Loop() {
		GrantAllows(g, req)
	}
}

func BenchmarkParse(b *testing.B) {
	raw := []byte(typicalPolicy)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p := mustParse(t, typicalPolicy)
	req := typicalRequest()
	deny := typicalRequest()
	deny.Action = "kms:DisableKey"
	other := typicalRequest()
	other.Caller.Principal = "stranger"
	for name, r := range map[string]Request{"allow": req, "explicit deny": deny, "implicit deny": other} {
		if n := testing.AllocsPerRun(200, func() { p.Evaluate(r) }); n > 0 {
			t.Errorf("%s: Evaluate allocates %.1f times per call", name, n)
		}
	}
}

package policy

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, d := range evalPolicies {
		f.Add([]byte(d))
	}
	f.Add(DefaultPolicy("alice"))
	f.Add([]byte(doc(stmt(`,"Condition":{"ForAllValues:StringNotLikeIfExists":{"kms:EncryptionContextKeys":["a*","?b"]},"Null":{"kms:ViaAlias":true}}`))))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":{"AWS":["*"]},"Action":["kms:*"],"Resource":["arn:trent:kms:*"]}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow",`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &pe) {
				t.Fatalf("error %v is not a ParseError wrapping ErrMalformed", err)
			}
			if p != nil {
				t.Fatal("policy and error")
			}
			return
		}
		// Requests derived from the input, so patterns in it get exercised.
		s := string(data)
		words := strings.FieldsFunc(s, func(r rune) bool { return r == '"' || r == ',' || r == '[' || r == ']' || r == '{' || r == '}' })
		pick := func(i int) string {
			if len(words) == 0 {
				return ""
			}
			return words[i%len(words)]
		}
		for i := 0; i < 8; i++ {
			req := Request{
				Caller:            Caller{Principal: pick(i), Roles: []string{pick(i + 1), strings.TrimPrefix(pick(i+2), "role/")}},
				Action:            []string{"kms:Encrypt", "kms:Decrypt", "kms:PutKeyPolicy", "trent:RemoveNode", pick(i + 3)}[i%5],
				Resource:          []string{arnK1, "", pick(i + 4)}[i%3],
				EncryptionContext: map[string]string{pick(i + 5): pick(i + 6)},
				ViaAlias:          []string{"", "alias/" + pick(i+7)}[i%2],
			}
			if i%3 == 0 {
				req.EncryptionContext = nil
			}
			r1, r2 := p.Evaluate(req), p.Evaluate(req)
			if r1 != r2 {
				t.Fatalf("Evaluate is not deterministic: %+v vs %+v", r1, r2)
			}
			if r1.Decision < ImplicitDeny || r1.Decision > ExplicitDeny || r1.Reason == "" {
				t.Fatalf("bad result %+v", r1)
			}
			_ = CheckLockout(p, req.Caller, req.Resource)
		}
	})
}

// fuzzPolicy pairs a policy with an independent statement of what each of
// its Deny statements means, as the oracle for FuzzEvaluate.
type fuzzPolicy struct {
	doc   string
	denys map[string]func(r *Request) bool // Sid -> does the Deny statement match
}

func hasRole(r *Request, role string) bool {
	for _, x := range r.Caller.Roles {
		if x == role {
			return true
		}
	}
	return false
}

var fuzzPolicies = []fuzzPolicy{
	{
		doc: doc(
			`{"Sid":"All","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
			`{"Sid":"D1","Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion","Resource":"*"}`,
			`{"Sid":"D2","Effect":"Deny","Principal":{"Trent":"role/contractor"},"Action":"kms:Decrypt","Resource":"*"}`,
		),
		denys: map[string]func(*Request) bool{
			"D1": func(r *Request) bool { return strings.EqualFold(r.Action, "kms:ScheduleKeyDeletion") },
			"D2": func(r *Request) bool { return strings.EqualFold(r.Action, "kms:Decrypt") && hasRole(r, "contractor") },
		},
	},
	{
		doc: doc(
			`{"Sid":"App","Effect":"Allow","Principal":{"Trent":["app","svc-*"]},"Action":["kms:Encrypt*","kms:Decrypt"],"Resource":"*","Condition":{"StringLike":{"kms:EncryptionContext:app":"*"}}}`,
			`{"Sid":"D1","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionContext:app":"payments"}}}`,
			`{"Sid":"D2","Effect":"Deny","Principal":{"Trent":["svc-*","bob"]},"Action":"kms:Encrypt*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":"tmp*"}}}`,
		),
		denys: map[string]func(*Request) bool{
			"D1": func(r *Request) bool {
				v, ok := r.EncryptionContext["app"]
				return strings.EqualFold(r.Action, "kms:Decrypt") && (!ok || v != "payments")
			},
			"D2": func(r *Request) bool {
				if !strings.HasPrefix(strings.ToLower(r.Action), "kms:encrypt") {
					return false
				}
				if !strings.HasPrefix(r.Caller.Principal, "svc-") && r.Caller.Principal != "bob" {
					return false
				}
				for k := range r.EncryptionContext {
					if strings.HasPrefix(k, "tmp") {
						return true
					}
				}
				return false
			},
		},
	},
	{
		doc: doc(
			`{"Sid":"Admins","Effect":"Allow","Principal":{"Trent":"role/admin"},"Action":"*","Resource":"*"}`,
			`{"Sid":"D1","Effect":"Deny","Principal":"*","Action":"*","Resource":"arn:trent:kms:eu-1::key/secret*","Condition":{"StringNotLikeIfExists":{"kms:ViaAlias":"alias/safe-*"}}}`,
			`{"Sid":"D2","Effect":"Deny","Principal":"*","Action":"kms:GenerateDataKey","Resource":"*","Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]},"Null":{"kms:EncryptionContextKeys":"false"}}}`,
			`{"Sid":"D3","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"kms:CallerPrincipal":"MALLORY"}}}`,
		),
		denys: map[string]func(*Request) bool{
			"D1": func(r *Request) bool {
				return strings.HasPrefix(r.Resource, "arn:trent:kms:eu-1::key/secret") &&
					(r.ViaAlias == "" || !strings.HasPrefix(r.ViaAlias, "alias/safe-"))
			},
			"D2": func(r *Request) bool {
				if !strings.EqualFold(r.Action, "kms:GenerateDataKey") || len(r.EncryptionContext) == 0 {
					return false
				}
				for k := range r.EncryptionContext {
					if k != "a" && k != "b" {
						return false
					}
				}
				return true
			},
			"D3": func(r *Request) bool {
				return strings.HasPrefix(strings.ToLower(r.Action), "kms:") && strings.EqualFold(r.Caller.Principal, "mallory")
			},
		},
	},
}

var fuzzResources = []string{arnK1, arnK2, "arn:trent:kms:eu-1::key/secret-1", "arn:trent:kms:us-1::key/secret-1", ""}

func FuzzEvaluate(f *testing.F) {
	f.Add("app", "contractor", uint8(7), "", uint8(0), "app", "payments", "tmp1", "x", "alias/safe-1")
	f.Add("svc-a", "admin", uint8(18), "", uint8(2), "tmp", "1", "", "", "")
	f.Add("MALLORY", "", uint8(200), "kms:Sign", uint8(1), "a", "1", "b", "2", "alias/x")
	f.Add("bob", "", uint8(19), "", uint8(3), "a", "1", "b", "2", "")
	parsed := make([]*Policy, len(fuzzPolicies))
	for i, fp := range fuzzPolicies {
		parsed[i] = mustParse(f, fp.doc)
	}
	f.Fuzz(func(t *testing.T, principal, role string, actSel uint8, action string, resSel uint8, k1, v1, k2, v2, alias string) {
		if int(actSel) < len(knownActions) {
			action = knownActions[actSel]
		} else if actSel%2 == 0 {
			action = strings.ToUpper(knownActions[int(actSel)%len(knownActions)])
		}
		resource := fuzzResources[int(resSel)%len(fuzzResources)]
		if int(resSel) >= len(fuzzResources) {
			resource = arnK1 + k2
		}
		var ec map[string]string
		if k1 != "" || k2 != "" {
			ec = map[string]string{}
			if k1 != "" {
				ec[k1] = v1
			}
			if k2 != "" {
				ec[k2] = v2
			}
		}
		req := Request{Caller: Caller{Principal: principal, Roles: []string{role}}, Action: action, Resource: resource, EncryptionContext: ec, ViaAlias: alias}
		for i, fp := range fuzzPolicies {
			p := parsed[i]
			got := p.Evaluate(req)
			var denied []string
			for sid, m := range fp.denys {
				if m(&req) {
					denied = append(denied, sid)
				}
			}
			if (got.Decision == ExplicitDeny) != (len(denied) > 0) {
				t.Fatalf("policy %d: %+v for %+v; matching Deny statements: %v", i, got, req, denied)
			}
			if got.Decision == ExplicitDeny {
				if _, ok := fp.denys[got.Sid]; !ok || !fp.denys[got.Sid](&req) {
					t.Fatalf("policy %d: ExplicitDeny by %q, which does not match", i, got.Sid)
				}
			}
			for _, v := range []string{v1, v2} {
				if len(v) >= 4 && strings.Contains(got.Reason, v) && !strings.Contains(reasonImplicit+fp.doc, v) {
					t.Fatalf("Reason %q contains context value %q", got.Reason, v)
				}
			}
			if got.Decision == Allow {
				if err := CheckLockout(p, req.Caller, req.Resource); err != nil && strings.EqualFold(action, actionPutKeyPolicy) && alias == "" && ec == nil {
					t.Fatalf("PutKeyPolicy allowed but lockout check fails: %v", err)
				}
			}
		}
	})
}

// globRegexp is an independent implementation of StringLike matching.
func globRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s)`)
	for _, r := range pat {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

func FuzzGlob(f *testing.F) {
	f.Add("a*b?c", "aXXbYc")
	f.Add("*??", "€")
	f.Add("kms:Encrypt*", "KMS:ENCRYPTX")
	f.Add("*a*a*a*", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab")
	f.Fuzz(func(t *testing.T, pat, s string) {
		if len(pat) > 64 || len(s) > 256 || !utf8.ValidString(pat) || !utf8.ValidString(s) {
			return
		}
		re := globRegexp(pat)
		p := compilePattern(pat, false)
		if got, want := p.match(s), re.MatchString(s); got != want {
			t.Fatalf("match(%q, %q) = %v, regexp says %v", pat, s, got, want)
		}
		pf := compilePattern(pat, true)
		if got, want := pf.match(s), globRegexp(asciiLower(pat)).MatchString(asciiLower(s)); got != want {
			t.Fatalf("folding match(%q, %q) = %v, regexp says %v", pat, s, got, want)
		}
	})
}

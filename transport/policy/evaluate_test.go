package policy

import (
	"strings"
	"testing"
)

const (
	arnK1 = "arn:trent:kms:eu-1::key/k1"
	arnK2 = "arn:trent:kms:eu-1::key/k2"
)

// Policies the evaluation matrix runs against, by name.
var evalPolicies = map[string]string{
	"basic": doc(
		`{"Sid":"Admins","Effect":"Allow","Principal":{"Trent":"role/admin"},"Action":"kms:*","Resource":"*"}`,
		`{"Sid":"AppUse","Effect":"Allow","Principal":{"Trent":["app","svc-*"]},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}`,
		`{"Sid":"NoDeletion","Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion","Resource":"*"}`,
		`{"Sid":"AuditK1","Effect":"Allow","Principal":{"Trent":"auditor"},"Action":"kms:Describe*","Resource":"arn:trent:kms:eu-1::key/k1"}`,
	),
	"everything": doc(`{"Sid":"All","Effect":"Allow","Principal":{"Trent":"*"},"Action":"*","Resource":"*"}`),
	"wildcards": doc(
		`{"Sid":"Q","Effect":"Allow","Principal":{"AWS":["app-?","role/ops-*"]},"Action":"kms:ReEncrypt*","Resource":"arn:trent:kms:*::key/k?"}`,
	),
	"contractors": doc(
		`{"Sid":"All","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Sid":"NoDecrypt","Effect":"Deny","Principal":{"Trent":"role/contractor"},"Action":"kms:decrypt","Resource":"*"}`,
	),
	"requireApp": doc(
		`{"Sid":"All","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Sid":"NeedApp","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:EncryptionContext:app":"payments"}}}`,
	),
	"requireAppIfExists": doc(
		`{"Sid":"All","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
		`{"Sid":"AppIfAny","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEqualsIfExists":{"kms:EncryptionContext:app":"payments"}}}`,
	),
	"eq":         cond(`{"StringEquals":{"kms:EncryptionContext:app":"payments"}}`),
	"eqMulti":    cond(`{"StringEquals":{"kms:EncryptionContext:app":["orders","payments"]}}`),
	"eqTwoKeys":  cond(`{"StringEquals":{"kms:EncryptionContext:app":"payments","kms:EncryptionContext:env":"prod"}}`),
	"twoOps":     cond(`{"StringEquals":{"kms:EncryptionContext:app":"payments"},"StringLike":{"kms:ViaAlias":"alias/prod-*"}}`),
	"eqCase":     cond(`{"StringEquals":{"kms:EncryptionContext:App":"payments"}}`),
	"eqUpperKey": cond(`{"StringEquals":{"KMS:ENCRYPTIONCONTEXT:app":"payments"}}`),
	"ne":         cond(`{"StringNotEquals":{"kms:EncryptionContext:app":"payments"}}`),
	"eqic":       cond(`{"StringEqualsIgnoreCase":{"kms:EncryptionContext:app":"PAYMENTS"}}`),
	"neic":       cond(`{"StringNotEqualsIgnoreCase":{"kms:EncryptionContext:app":"PAYMENTS"}}`),
	"like":       cond(`{"StringLike":{"kms:EncryptionContext:app":"pay*"}}`),
	"likeQ":      cond(`{"StringLike":{"kms:EncryptionContext:app":"p?yments"}}`),
	"notlike":    cond(`{"StringNotLike":{"kms:EncryptionContext:app":["pay*","ref*"]}}`),
	"eqIfEx":     cond(`{"StringEqualsIfExists":{"kms:EncryptionContext:app":"payments"}}`),
	"likeIfEx":   cond(`{"StringLikeIfExists":{"kms:EncryptionContext:app":"pay*"}}`),
	"nullTrue":   cond(`{"Null":{"kms:EncryptionContext:app":"true"}}`),
	"nullFalse":  cond(`{"Null":{"kms:EncryptionContext:app":false}}`),
	"anyEq":      cond(`{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"app"}}`),
	"allEq":      cond(`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app","env"]}}`),
	"allEqNN":    cond(`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["app","env"]},"Null":{"kms:EncryptionContextKeys":"false"}}`),
	"anyLike":    cond(`{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":"tmp*"}}`),
	"allNe":      cond(`{"ForAllValues:StringNotEquals":{"kms:EncryptionContextKeys":"secret"}}`),
	"anyNe":      cond(`{"ForAnyValue:StringNotEquals":{"kms:EncryptionContextKeys":"app"}}`),
	"anyEqIfEx":  cond(`{"ForAnyValue:StringEqualsIfExists":{"kms:EncryptionContextKeys":"app"}}`),
	"anyEqIC":    cond(`{"ForAnyValue:StringEqualsIgnoreCase":{"kms:EncryptionContextKeys":"APP"}}`),
	"allNotLike": cond(`{"ForAllValues:StringNotLike":{"kms:EncryptionContextKeys":"tmp*"}}`),
	"keysNull":   cond(`{"Null":{"kms:EncryptionContextKeys":"true"}}`),
	"callerEq":   cond(`{"StringEquals":{"kms:CallerPrincipal":"app"}}`),
	"callerLike": cond(`{"StringLike":{"kms:CallerPrincipal":"team-*"}}`),
	"callerNe":   cond(`{"StringNotEquals":{"kms:CallerPrincipal":"mallory"}}`),
	"aliasEq":    cond(`{"StringEquals":{"kms:ViaAlias":"alias/prod"}}`),
	"aliasReq":   cond(`{"StringEquals":{"kms:RequestAlias":"alias/prod"}}`),
	"aliasLike":  cond(`{"StringLike":{"kms:ViaAlias":"alias/prod-*"}}`),
	"aliasNe":    cond(`{"StringNotEquals":{"kms:ViaAlias":"alias/dev"}}`),
	"aliasEqIC":  cond(`{"StringEqualsIgnoreCase":{"kms:ViaAlias":"ALIAS/PROD"}}`),
	"aliasNull":  cond(`{"Null":{"kms:ViaAlias":"false"}}`),
}

func mustParse(t testing.TB, d string) *Policy {
	t.Helper()
	p, err := Parse([]byte(d))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, d)
	}
	return p
}

type ctx = map[string]string

// rq builds a request on key k1.
func rq(principal string, roles []string, action string, ec ctx, alias string) Request {
	return Request{Caller: Caller{Principal: principal, Roles: roles}, Action: action, Resource: arnK1, EncryptionContext: ec, ViaAlias: alias}
}

func enc(ec ctx) Request          { return rq("app", nil, "kms:Encrypt", ec, "") }
func via(alias string) Request    { return rq("app", nil, "kms:Encrypt", nil, alias) }
func as(principal string) Request { return rq(principal, nil, "kms:Encrypt", nil, "") }

func TestEvaluateMatrix(t *testing.T) {
	admin := []string{"admin"}
	onK2 := func(r Request) Request { r.Resource = arnK2; return r }
	tests := []struct {
		name   string
		policy string
		req    Request
		want   Decision
		sid    string
	}{
		// principals, actions, resources, deny precedence
		{"admin role may encrypt", "basic", rq("alice", admin, "kms:Encrypt", nil, ""), Allow, "Admins"},
		{"admin role among others", "basic", rq("alice", []string{"dev", "admin"}, "kms:PutKeyPolicy", nil, ""), Allow, "Admins"},
		{"explicit deny beats kms:*", "basic", rq("alice", admin, "kms:ScheduleKeyDeletion", nil, ""), ExplicitDeny, "NoDeletion"},
		{"explicit deny for everyone", "basic", rq("app", nil, "kms:ScheduleKeyDeletion", nil, ""), ExplicitDeny, "NoDeletion"},
		{"named principal", "basic", rq("app", nil, "kms:Encrypt", nil, ""), Allow, "AppUse"},
		{"named principal second action", "basic", rq("app", nil, "kms:Decrypt", nil, ""), Allow, "AppUse"},
		{"action wildcard GenerateDataKey*", "basic", rq("app", nil, "kms:GenerateDataKeyWithoutPlaintext", nil, ""), Allow, "AppUse"},
		{"action not listed", "basic", rq("app", nil, "kms:ReEncryptFrom", nil, ""), ImplicitDeny, ""},
		{"action case-insensitive", "basic", rq("app", nil, "KMS:ENCRYPT", nil, ""), Allow, "AppUse"},
		{"principal wildcard", "basic", rq("svc-billing", nil, "kms:Encrypt", nil, ""), Allow, "AppUse"},
		{"principal wildcard needs its prefix", "basic", rq("svcbilling", nil, "kms:Encrypt", nil, ""), ImplicitDeny, ""},
		{"principal names are case-sensitive", "basic", rq("APP", nil, "kms:Encrypt", nil, ""), ImplicitDeny, ""},
		{"stranger", "basic", rq("mallory", nil, "kms:Encrypt", nil, ""), ImplicitDeny, ""},
		{"role names are case-sensitive", "basic", rq("alice", []string{"Admin"}, "kms:Encrypt", nil, ""), ImplicitDeny, ""},
		{"principal named like a role is not the role", "basic", rq("admin", nil, "kms:Encrypt", nil, ""), ImplicitDeny, ""},
		{"resource ARN matches", "basic", rq("auditor", nil, "kms:DescribeKey", nil, ""), Allow, "AuditK1"},
		{"resource mismatch", "basic", onK2(rq("auditor", nil, "kms:DescribeKey", nil, "")), ImplicitDeny, ""},
		{"kms:* does not cover trent actions", "basic", rq("alice", admin, "trent:ClusterStatus", nil, ""), ImplicitDeny, ""},
		{"* covers trent actions", "everything", rq("x", nil, "trent:RemoveNode", nil, ""), Allow, "All"},
		{"Trent * matches anyone", "everything", rq("someone", nil, "kms:Encrypt", nil, ""), Allow, "All"},
		{"empty principal matches Trent *", "everything", rq("", nil, "kms:Encrypt", nil, ""), Allow, "All"},
		{"? matches one character", "wildcards", rq("app-1", nil, "kms:ReEncryptTo", nil, ""), Allow, "Q"},
		{"? matches exactly one", "wildcards", rq("app-12", nil, "kms:ReEncryptTo", nil, ""), ImplicitDeny, ""},
		{"? matches one rune", "wildcards", rq("app-é", nil, "kms:ReEncryptFrom", nil, ""), Allow, "Q"},
		{"role wildcard", "wildcards", rq("bob", []string{"ops-eu"}, "kms:ReEncryptFrom", nil, ""), Allow, "Q"},
		{"resource wildcard", "wildcards", onK2(rq("app-1", nil, "kms:ReEncryptFrom", nil, "")), Allow, "Q"},
		{"resource wildcard mismatch", "wildcards", func() Request {
			r := rq("app-1", nil, "kms:ReEncryptFrom", nil, "")
			r.Resource = arnK1 + "0"
			return r
		}(), ImplicitDeny, ""},
		{"deny by role", "contractors", rq("carol", []string{"contractor"}, "kms:Decrypt", nil, ""), ExplicitDeny, "NoDecrypt"},
		{"deny by role, other action allowed", "contractors", rq("carol", []string{"contractor"}, "kms:Encrypt", nil, ""), Allow, "All"},
		{"deny by role, other caller allowed", "contractors", rq("dave", []string{"staff"}, "kms:Decrypt", nil, ""), Allow, "All"},
		{"deny unless context: right context", "requireApp", rq("x", nil, "kms:Decrypt", ctx{"app": "payments"}, ""), Allow, "All"},
		{"deny unless context: wrong context", "requireApp", rq("x", nil, "kms:Decrypt", ctx{"app": "orders"}, ""), ExplicitDeny, "NeedApp"},
		{"deny unless context: no context", "requireApp", rq("x", nil, "kms:Decrypt", nil, ""), ExplicitDeny, "NeedApp"},
		{"deny IfExists: no context still denies", "requireAppIfExists", rq("x", nil, "kms:Decrypt", nil, ""), ExplicitDeny, "AppIfAny"},
		{"deny IfExists: right context", "requireAppIfExists", rq("x", nil, "kms:Decrypt", ctx{"app": "payments"}, ""), Allow, "All"},
		{"deny IfExists: wrong context", "requireAppIfExists", rq("x", nil, "kms:Decrypt", ctx{"app": "orders"}, ""), ExplicitDeny, "AppIfAny"},

		// kms:EncryptionContext:<k>, each operator: match, mismatch, absent
		{"StringEquals match", "eq", enc(ctx{"app": "payments"}), Allow, ""},
		{"StringEquals other value", "eq", enc(ctx{"app": "orders"}), ImplicitDeny, ""},
		{"StringEquals is case-sensitive", "eq", enc(ctx{"app": "Payments"}), ImplicitDeny, ""},
		{"StringEquals absent key", "eq", enc(ctx{"env": "prod"}), ImplicitDeny, ""},
		{"StringEquals nil context", "eq", enc(nil), ImplicitDeny, ""},
		{"StringEquals values OR", "eqMulti", enc(ctx{"app": "orders"}), Allow, ""},
		{"StringEquals keys AND: both", "eqTwoKeys", enc(ctx{"app": "payments", "env": "prod"}), Allow, ""},
		{"StringEquals keys AND: one missing", "eqTwoKeys", enc(ctx{"app": "payments"}), ImplicitDeny, ""},
		{"operators AND: both", "twoOps", rq("app", nil, "kms:Encrypt", ctx{"app": "payments"}, "alias/prod-eu"), Allow, ""},
		{"operators AND: alias missing", "twoOps", enc(ctx{"app": "payments"}), ImplicitDeny, ""},
		{"context key suffix is case-sensitive", "eqCase", enc(ctx{"app": "payments"}), ImplicitDeny, ""},
		{"context key suffix exact", "eqCase", enc(ctx{"App": "payments"}), Allow, ""},
		{"condition key prefix case-insensitive", "eqUpperKey", enc(ctx{"app": "payments"}), Allow, ""},
		{"StringNotEquals other value", "ne", enc(ctx{"app": "orders"}), Allow, ""},
		{"StringNotEquals same value", "ne", enc(ctx{"app": "payments"}), ImplicitDeny, ""},
		{"StringNotEquals absent key is true", "ne", enc(nil), Allow, ""},
		{"StringEqualsIgnoreCase match", "eqic", enc(ctx{"app": "payments"}), Allow, ""},
		{"StringEqualsIgnoreCase mismatch", "eqic", enc(ctx{"app": "orders"}), ImplicitDeny, ""},
		{"StringEqualsIgnoreCase absent", "eqic", enc(nil), ImplicitDeny, ""},
		{"StringNotEqualsIgnoreCase same", "neic", enc(ctx{"app": "Payments"}), ImplicitDeny, ""},
		{"StringNotEqualsIgnoreCase other", "neic", enc(ctx{"app": "orders"}), Allow, ""},
		{"StringNotEqualsIgnoreCase absent", "neic", enc(ctx{}), Allow, ""},
		{"StringLike match", "like", enc(ctx{"app": "payments"}), Allow, ""},
		{"StringLike star matches empty", "like", enc(ctx{"app": "pay"}), Allow, ""},
		{"StringLike mismatch", "like", enc(ctx{"app": "orders"}), ImplicitDeny, ""},
		{"StringLike absent", "like", enc(nil), ImplicitDeny, ""},
		{"StringLike ?", "likeQ", enc(ctx{"app": "pAyments"}), Allow, ""},
		{"StringLike ? needs a character", "likeQ", enc(ctx{"app": "pyments"}), ImplicitDeny, ""},
		{"StringNotLike none match", "notlike", enc(ctx{"app": "orders"}), Allow, ""},
		{"StringNotLike second pattern matches", "notlike", enc(ctx{"app": "refunds"}), ImplicitDeny, ""},
		{"StringNotLike absent", "notlike", enc(nil), Allow, ""},
		{"IfExists absent", "eqIfEx", enc(nil), Allow, ""},
		{"IfExists present mismatch", "eqIfEx", enc(ctx{"app": "orders"}), ImplicitDeny, ""},
		{"IfExists present match", "eqIfEx", enc(ctx{"app": "payments"}), Allow, ""},
		{"StringLikeIfExists absent", "likeIfEx", enc(ctx{"other": "x"}), Allow, ""},
		{"StringLikeIfExists mismatch", "likeIfEx", enc(ctx{"app": "x"}), ImplicitDeny, ""},
		{"Null true absent", "nullTrue", enc(nil), Allow, ""},
		{"Null true present", "nullTrue", enc(ctx{"app": ""}), ImplicitDeny, ""},
		{"Null false present", "nullFalse", enc(ctx{"app": "x"}), Allow, ""},
		{"Null false absent", "nullFalse", enc(nil), ImplicitDeny, ""},

		// kms:EncryptionContextKeys with set qualifiers
		{"ForAnyValue match", "anyEq", enc(ctx{"app": "x", "env": "y"}), Allow, ""},
		{"ForAnyValue no match", "anyEq", enc(ctx{"env": "y"}), ImplicitDeny, ""},
		{"ForAnyValue nil context", "anyEq", enc(nil), ImplicitDeny, ""},
		{"ForAnyValue empty context", "anyEq", enc(ctx{}), ImplicitDeny, ""},
		{"ForAllValues subset", "allEq", enc(ctx{"app": "x"}), Allow, ""},
		{"ForAllValues all", "allEq", enc(ctx{"app": "x", "env": "y"}), Allow, ""},
		{"ForAllValues extra key", "allEq", enc(ctx{"app": "x", "tmp": "y"}), ImplicitDeny, ""},
		{"ForAllValues nil context is true", "allEq", enc(nil), Allow, ""},
		{"ForAllValues empty context is true", "allEq", enc(ctx{}), Allow, ""},
		{"ForAllValues with Null false: empty", "allEqNN", enc(nil), ImplicitDeny, ""},
		{"ForAllValues with Null false: present", "allEqNN", enc(ctx{"env": "x"}), Allow, ""},
		{"ForAnyValue StringLike", "anyLike", enc(ctx{"tmpfile": "x"}), Allow, ""},
		{"ForAnyValue StringLike no match", "anyLike", enc(ctx{"file": "tmp"}), ImplicitDeny, ""},
		{"ForAllValues StringNotEquals ok", "allNe", enc(ctx{"a": "1", "b": "2"}), Allow, ""},
		{"ForAllValues StringNotEquals hit", "allNe", enc(ctx{"a": "1", "secret": "2"}), ImplicitDeny, ""},
		{"ForAllValues StringNotEquals empty", "allNe", enc(nil), Allow, ""},
		{"ForAnyValue StringNotEquals only that key", "anyNe", enc(ctx{"app": "1"}), ImplicitDeny, ""},
		{"ForAnyValue StringNotEquals another key", "anyNe", enc(ctx{"app": "1", "b": "2"}), Allow, ""},
		{"ForAnyValue StringNotEquals empty", "anyNe", enc(nil), ImplicitDeny, ""},
		{"ForAnyValue IfExists empty", "anyEqIfEx", enc(nil), Allow, ""},
		{"ForAnyValue IfExists mismatch", "anyEqIfEx", enc(ctx{"b": "1"}), ImplicitDeny, ""},
		{"ForAnyValue IgnoreCase", "anyEqIC", enc(ctx{"App": "1"}), Allow, ""},
		{"ForAllValues StringNotLike", "allNotLike", enc(ctx{"a": "tmp"}), Allow, ""},
		{"ForAllValues StringNotLike hit", "allNotLike", enc(ctx{"a": "1", "tmp1": "2"}), ImplicitDeny, ""},
		{"Null keys: no context", "keysNull", enc(nil), Allow, ""},
		{"Null keys: context", "keysNull", enc(ctx{"a": "1"}), ImplicitDeny, ""},

		// kms:CallerPrincipal
		{"CallerPrincipal equals", "callerEq", as("app"), Allow, ""},
		{"CallerPrincipal differs", "callerEq", as("app2"), ImplicitDeny, ""},
		{"CallerPrincipal like", "callerLike", as("team-a"), Allow, ""},
		{"CallerPrincipal like mismatch", "callerLike", as("teamb"), ImplicitDeny, ""},
		{"CallerPrincipal not equals", "callerNe", as("app"), Allow, ""},
		{"CallerPrincipal not equals hit", "callerNe", as("mallory"), ImplicitDeny, ""},

		// kms:ViaAlias
		{"ViaAlias equals", "aliasEq", via("alias/prod"), Allow, ""},
		{"ViaAlias other alias", "aliasEq", via("alias/dev"), ImplicitDeny, ""},
		{"ViaAlias no alias", "aliasEq", via(""), ImplicitDeny, ""},
		{"RequestAlias synonym", "aliasReq", via("alias/prod"), Allow, ""},
		{"ViaAlias like", "aliasLike", via("alias/prod-eu"), Allow, ""},
		{"ViaAlias like mismatch", "aliasLike", via("alias/dev-eu"), ImplicitDeny, ""},
		{"ViaAlias not equals no alias", "aliasNe", via(""), Allow, ""},
		{"ViaAlias not equals hit", "aliasNe", via("alias/dev"), ImplicitDeny, ""},
		{"ViaAlias ignore case", "aliasEqIC", via("alias/Prod"), Allow, ""},
		{"ViaAlias Null false: used", "aliasNull", via("alias/x"), Allow, ""},
		{"ViaAlias Null false: not used", "aliasNull", via(""), ImplicitDeny, ""},
	}
	if len(tests) < 40 {
		t.Fatalf("only %d cases", len(tests))
	}
	policies := map[string]*Policy{}
	for name, d := range evalPolicies {
		policies[name] = mustParse(t, d)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := policies[tc.policy]
			if !ok {
				t.Fatalf("no policy %q", tc.policy)
			}
			got := p.Evaluate(tc.req)
			if got.Decision != tc.want {
				t.Fatalf("Decision = %v (%s), want %v", got.Decision, got.Reason, tc.want)
			}
			if got.Sid != tc.sid {
				t.Errorf("Sid = %q, want %q", got.Sid, tc.sid)
			}
			if got.Reason == "" {
				t.Errorf("empty Reason")
			}
			if tc.sid != "" && !strings.Contains(got.Reason, `"`+tc.sid+`"`) {
				t.Errorf("Reason %q does not name statement %q", got.Reason, tc.sid)
			}
			for k, v := range tc.req.EncryptionContext {
				if len(v) > 2 && strings.Contains(got.Reason, v) {
					t.Errorf("Reason %q contains context value %q of %q", got.Reason, v, k)
				}
			}
		})
	}
}

func TestEvaluateNilPolicy(t *testing.T) {
	var p *Policy
	if got := p.Evaluate(as("app")); got.Decision != ImplicitDeny {
		t.Fatalf("nil policy: %v", got.Decision)
	}
	var r Result
	if r.Decision != ImplicitDeny {
		t.Fatalf("zero Decision is %v, want ImplicitDeny", r.Decision)
	}
}

func TestEvaluateReasonNamesUnnamedStatement(t *testing.T) {
	p := mustParse(t, doc(stmt(""), `{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}`))
	if got := p.Evaluate(as("x")); got.Decision != Allow || got.Sid != "" || !strings.Contains(got.Reason, "Statement[0]") {
		t.Errorf("allow: %+v", got)
	}
	r := as("x")
	r.Action = "kms:Decrypt"
	if got := p.Evaluate(r); got.Decision != ExplicitDeny || !strings.Contains(got.Reason, "Statement[1]") {
		t.Errorf("deny: %+v", got)
	}
}

func TestDecisionString(t *testing.T) {
	for d, want := range map[Decision]string{Allow: "Allow", ImplicitDeny: "ImplicitDeny", ExplicitDeny: "ExplicitDeny", 7: "Decision(invalid)"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q", int(d), d.String())
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"*a", "bba", true},
		{"a*", "ab", true},
		{"?", "é", true},
		{"??", "é", false},
		{"*??", "€", false},
		{"*?", "€", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*x*y*", "xxxxy", true},
		{"*aaa*b", strings.Repeat("a", 100), false},
	}
	for _, tc := range tests {
		p := compilePattern(tc.pat, false)
		if got := p.match(tc.s); got != tc.want {
			t.Errorf("match(%q, %q) = %v", tc.pat, tc.s, got)
		}
		if got := globMatch(tc.pat, tc.s, false); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.pat, tc.s, got)
		}
	}
}

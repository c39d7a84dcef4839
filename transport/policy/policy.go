package policy

// Caller is the authenticated identity behind a request: the principal name
// from the client certificate's URI SAN trent://principal/NAME and the roles
// from its trent://role/ROLE SANs.
type Caller struct {
	Principal string
	Roles     []string
}

// Request is what a policy is evaluated against.
type Request struct {
	Caller            Caller
	Action            string            // "kms:Encrypt"
	Resource          string            // key ARN, arn:trent:kms:REGION::key/ID
	EncryptionContext map[string]string // nil when the operation has none
	ViaAlias          string            // alias name the caller used ("alias/x"), "" if none
}

// Decision is the outcome of evaluating a policy. The zero value is
// ImplicitDeny, so a Result nobody filled in denies.
type Decision int

const (
	// ImplicitDeny: no Allow statement matched (and no Deny statement did).
	// A grant may still allow the request.
	ImplicitDeny Decision = iota
	// Allow: an Allow statement matched and no Deny statement did.
	Allow
	// ExplicitDeny: a Deny statement matched. Nothing, not even a grant,
	// overrides it.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case ImplicitDeny:
		return "ImplicitDeny"
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "Decision(invalid)"
}

// Result explains a Decision. Sid is the Sid of the deciding statement ("" for
// ImplicitDeny or a statement without Sid). Reason is for humans and audit
// logs: it names the deciding statement and never contains encryption-context
// values or anything else taken from the request.
type Result struct {
	Decision Decision
	Sid      string
	Reason   string
}

const (
	reasonNoPolicy = "no key policy"
	reasonImplicit = "implicitly denied: no statement in the key policy allows this principal to perform this action on this key"
)

// Policy is a parsed key policy. It is immutable and safe for concurrent
// use; every pattern in it was compiled by Parse, so Evaluate does not
// allocate.
type Policy struct {
	deny  []statement // Deny statements, in document order
	allow []statement // Allow statements, in document order
}

type statement struct {
	sid       string
	reason    string // precomputed Result.Reason
	principal principalSet
	anyAction bool
	actions   []pattern // case-folding
	anyRes    bool
	resources []pattern
	conds     []condition
}

type principalSet struct {
	any   bool
	names []pattern
	roles []pattern
}

// Evaluate decides req against the policy: ExplicitDeny if any Deny statement
// matches, else Allow if any Allow statement matches, else ImplicitDeny. A
// statement matches when its Principal, Action and Resource match and every
// condition holds. A nil *Policy denies implicitly.
//
// Grants are not part of the policy; the caller ORs them in, and only when
// the policy's Decision is not ExplicitDeny (as in AWS, an explicit deny in
// the key policy beats any grant).
func (p *Policy) Evaluate(req Request) Result {
	if p == nil {
		return Result{Decision: ImplicitDeny, Reason: reasonNoPolicy}
	}
	for i := range p.deny {
		if s := &p.deny[i]; s.matches(&req) {
			return Result{Decision: ExplicitDeny, Sid: s.sid, Reason: s.reason}
		}
	}
	for i := range p.allow {
		if s := &p.allow[i]; s.matches(&req) {
			return Result{Decision: Allow, Sid: s.sid, Reason: s.reason}
		}
	}
	return Result{Decision: ImplicitDeny, Reason: reasonImplicit}
}

func (s *statement) matches(req *Request) bool {
	if !s.anyAction && !matchAny(s.actions, req.Action) {
		return false
	}
	if !s.principal.match(&req.Caller) {
		return false
	}
	if !s.anyRes && !matchAny(s.resources, req.Resource) {
		return false
	}
	for i := range s.conds {
		if !s.conds[i].eval(req) {
			return false
		}
	}
	return true
}

func matchAny(ps []pattern, s string) bool {
	for i := range ps {
		if ps[i].match(s) {
			return true
		}
	}
	return false
}

// match reports whether the caller is one of the principals. An empty
// principal name matches no name pattern (only "*", which matches every
// caller); empty role strings are ignored.
func (ps *principalSet) match(c *Caller) bool {
	if ps.any {
		return true
	}
	if c.Principal != "" && matchAny(ps.names, c.Principal) {
		return true
	}
	if len(ps.roles) == 0 {
		return false
	}
	for _, r := range c.Roles {
		if r != "" && matchAny(ps.roles, r) {
			return true
		}
	}
	return false
}

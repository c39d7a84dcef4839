package policy

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Constraints limit a grant to requests with a given encryption context. At
// most one of the two maps may be set (non-empty). Keys and values are
// compared exactly (AWS compares constraint keys without regard to case;
// Trent does not).
type Constraints struct {
	// EncryptionContextEquals: the request's context must be exactly this map.
	EncryptionContextEquals map[string]string
	// EncryptionContextSubset: every pair must be in the request's context,
	// which may hold more.
	EncryptionContextSubset map[string]string
}

// Grant delegates some operations on one key to one principal.
type Grant struct {
	ID                string // assigned by the service
	Name              string // optional; makes CreateGrant idempotent (see SameGrantRequest)
	KeyID             string
	Grantee           string // principal name, matched exactly
	RetiringPrincipal string // optional principal name that may retire the grant
	Operations        []string
	Constraints       *Constraints
	Issuer            string // principal that created the grant
	// CreationTimeUnixNano is set by the service; grant tokens carry it so a
	// node can bound how long it honours a token for a grant it has not seen.
	CreationTimeUnixNano int64
}

// GrantError is the error ValidateGrant and CheckChildGrant return: Field
// names the offending field ("Operations[2]", "Constraints", "Name", ...).
// It wraps ErrInvalidGrant.
type GrantError struct {
	Field string
	Msg   string
}

func (e *GrantError) Error() string { return ErrInvalidGrant.Error() + ": " + e.Field + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalidGrant) hold.
func (e *GrantError) Unwrap() error { return ErrInvalidGrant }

func gerr(field, msg string) error { return &GrantError{Field: field, Msg: msg} }

const maxGrantNameLen = 256

// ValidateGrant checks a grant as CreateGrant must before storing it: a key,
// a valid grantee, one or more known operations without duplicates, at most
// one kind of constraint and only with operations that accept an encryption
// context (DescribeKey, CreateGrant and RetireGrant may accompany
// constraints, which then do not apply to them), and a Name matching
// ^[a-zA-Z0-9:/_-]+$ of at most 256 characters. ID, Issuer and the creation
// time are assigned by the service and not checked.
func ValidateGrant(g Grant) error {
	if g.KeyID == "" {
		return gerr("KeyID", "missing")
	}
	if strings.ContainsFunc(g.KeyID, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return gerr("KeyID", "contains white space or a control character")
	}
	if g.Grantee == "" {
		return gerr("Grantee", "missing")
	}
	if err := ValidatePrincipalName(g.Grantee); err != nil {
		return gerr("Grantee", err.Error())
	}
	if g.RetiringPrincipal != "" {
		if err := ValidatePrincipalName(g.RetiringPrincipal); err != nil {
			return gerr("RetiringPrincipal", err.Error())
		}
	}
	if len(g.Operations) == 0 {
		return gerr("Operations", "missing; name at least one operation")
	}
	for i, op := range g.Operations {
		field := "Operations[" + strconv.Itoa(i) + "]"
		if grantOpClassOf(op) == opUnknown {
			return gerr(field, unknownOpMsg(op))
		}
		if slices.Contains(g.Operations[:i], op) {
			return gerr(field, "duplicate operation "+quote(op))
		}
	}
	if c := g.Constraints; c != nil {
		eq, sub := len(c.EncryptionContextEquals) > 0, len(c.EncryptionContextSubset) > 0
		switch {
		case eq && sub:
			return gerr("Constraints", "set EncryptionContextEquals or EncryptionContextSubset, not both")
		case !eq && !sub:
			return gerr("Constraints", "empty; set EncryptionContextEquals or EncryptionContextSubset, or omit Constraints")
		}
		for _, f := range []struct {
			name string
			m    map[string]string
		}{{"Constraints.EncryptionContextEquals", c.EncryptionContextEquals}, {"Constraints.EncryptionContextSubset", c.EncryptionContextSubset}} {
			if _, ok := f.m[""]; ok {
				return gerr(f.name, "an encryption context key is empty")
			}
		}
		for i, op := range g.Operations {
			if grantOpClassOf(op) == opNoContext {
				return gerr("Operations["+strconv.Itoa(i)+"]", op+" takes no encryption context, so a grant with encryption context constraints cannot allow it")
			}
		}
	}
	if g.Name != "" {
		if len(g.Name) > maxGrantNameLen {
			return gerr("Name", "longer than 256 characters")
		}
		for _, r := range g.Name {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ':' || r == '/' || r == '_' || r == '-') {
				return gerr("Name", "may contain only letters, digits and : / _ - (got "+quote(g.Name)+")")
			}
		}
	}
	return nil
}

func unknownOpMsg(op string) string {
	if after, ok := strings.CutPrefix(op, "kms:"); ok && grantOpClassOf(after) != opUnknown {
		return "grant operations are written without the kms: prefix: " + quote(after) + ", not " + quote(op)
	}
	for _, k := range GrantOperations {
		if strings.EqualFold(k, op) {
			return "unknown operation " + quote(op) + "; did you mean " + quote(k) + "? (operation names are case-sensitive)"
		}
	}
	return "unknown operation " + quote(op) + " (a grant may allow: " + strings.Join(GrantOperations, ", ") + ")"
}

// GrantAllows reports whether g allows req: the caller's principal name is
// exactly the grantee, req.Action is "kms:" + one of the grant's operations,
// req.Resource is the ARN of the grant's key, and the constraints hold.
// Constraints are checked for operations that take an encryption context
// (EncryptionContextEquals: the request's context is exactly the map;
// EncryptionContextSubset: every pair is in the request's context) and not
// for DescribeKey, RetireGrant and CreateGrant. For CreateGrant the caller
// must also check the new grant with CheckChildGrant.
//
// A grant never overrides an explicit deny in the key policy: call
// GrantAllows only when Evaluate did not return ExplicitDeny. The caller is
// responsible for passing only grants that exist (are not retired or
// revoked).
func GrantAllows(g Grant, req Request) bool {
	if g.Grantee == "" || req.Caller.Principal != g.Grantee {
		return false
	}
	if len(req.Action) <= len("kms:") || !asciiHasPrefixFold(req.Action, "kms:") {
		return false
	}
	action := req.Action[len("kms:"):]
	op := ""
	for _, o := range g.Operations {
		if asciiEqualFold(o, action) {
			op = o
			break
		}
	}
	class := grantOpClassOf(op)
	if class == opUnknown {
		return false
	}
	if g.KeyID == "" || keyIDOfARN(req.Resource) != g.KeyID {
		return false
	}
	c := g.Constraints
	if c == nil {
		return true
	}
	eq, sub := len(c.EncryptionContextEquals) > 0, len(c.EncryptionContextSubset) > 0
	switch {
	case eq == sub:
		return false // malformed: both or neither; fail closed
	case class == opNoContext:
		return false // ValidateGrant refuses this combination; fail closed
	case class == opManagement:
		return true
	case eq:
		return maps.Equal(c.EncryptionContextEquals, req.EncryptionContext)
	default:
		return isSubset(c.EncryptionContextSubset, req.EncryptionContext)
	}
}

// isSubset reports whether every pair of sub is in m.
func isSubset(sub, m map[string]string) bool {
	if len(sub) > len(m) {
		return false
	}
	for k, v := range sub {
		if w, ok := m[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// keyIDOfARN returns ID from arn:trent:kms:REGION::key/ID, or "".
func keyIDOfARN(arn string) string {
	if !strings.HasPrefix(arn, "arn:trent:kms:") {
		return ""
	}
	_, res, ok := strings.Cut(arn[len("arn:trent:kms:"):], "::")
	if !ok {
		return ""
	}
	id, ok := strings.CutPrefix(res, "key/")
	if !ok {
		return ""
	}
	return id
}

// CanRetire reports whether caller may retire g by RetireGrant: the grant's
// retiring principal, or its grantee when the grant includes the RetireGrant
// operation (the AWS rule). Principals allowed kms:RetireGrant or
// kms:RevokeGrant by the key policy are the caller's business.
func CanRetire(g Grant, caller Caller) bool {
	if caller.Principal == "" {
		return false
	}
	if caller.Principal == g.RetiringPrincipal {
		return true
	}
	return caller.Principal == g.Grantee && slices.Contains(g.Operations, "RetireGrant")
}

// CheckChildGrant checks a grant that a grantee creates by virtue of
// parent's CreateGrant operation: it must be valid, on the same key, allow
// no operation parent does not, and be constrained at least as strictly
// (parent Equals E: child Equals exactly E; parent Subset S: child Equals or
// Subset containing every pair of S).
func CheckChildGrant(parent, child Grant) error {
	if err := ValidateGrant(child); err != nil {
		return err
	}
	if !slices.Contains(parent.Operations, "CreateGrant") {
		return gerr("Operations", "the parent grant does not allow CreateGrant")
	}
	if child.KeyID != parent.KeyID {
		return gerr("KeyID", "a grant created through a grant must be for the same key")
	}
	for i, op := range child.Operations {
		if !slices.Contains(parent.Operations, op) {
			return gerr("Operations["+strconv.Itoa(i)+"]", quote(op)+" is not allowed by the grant this one is created through")
		}
	}
	pc := parent.Constraints
	if pc == nil {
		return nil
	}
	cc := child.Constraints
	if cc == nil {
		return gerr("Constraints", "must be at least as strict as the constraints of the grant this one is created through")
	}
	if len(pc.EncryptionContextEquals) > 0 {
		if !maps.Equal(cc.EncryptionContextEquals, pc.EncryptionContextEquals) {
			return gerr("Constraints.EncryptionContextEquals", "must equal the parent grant's EncryptionContextEquals")
		}
		return nil
	}
	want := pc.EncryptionContextSubset
	if !isSubset(want, cc.EncryptionContextEquals) && !isSubset(want, cc.EncryptionContextSubset) {
		return gerr("Constraints", "must include every pair of the parent grant's EncryptionContextSubset")
	}
	return nil
}

// SameGrantRequest reports whether b repeats a's CreateGrant request, so
// CreateGrant with a Name can return the existing grant's ID instead of
// creating another (AWS: a retry with the same Name and the same parameters
// is idempotent; a different parameter makes a new grant). Both must have
// the same non-empty Name, key, grantee, retiring principal, set of
// operations and constraints. ID, Issuer and creation time are ignored.
func SameGrantRequest(a, b Grant) bool {
	if a.Name == "" || a.Name != b.Name || a.KeyID != b.KeyID || a.Grantee != b.Grantee ||
		a.RetiringPrincipal != b.RetiringPrincipal {
		return false
	}
	if !sameSet(a.Operations, b.Operations) {
		return false
	}
	ac, bc := a.Constraints, b.Constraints
	if ac == nil || bc == nil {
		return ac == bc
	}
	return maps.Equal(ac.EncryptionContextEquals, bc.EncryptionContextEquals) &&
		maps.Equal(ac.EncryptionContextSubset, bc.EncryptionContextSubset)
}

func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

package policy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// AdminRole is the role the default key policy gives full control of a key.
const AdminRole = "admin"

// DefaultSid is the Sid of the default policy's only statement.
const DefaultSid = "Enable creator and admin role full control"

// DefaultPolicy returns the key policy a key gets when CreateKey is called
// without one: the creating principal and the admin role may perform every
// kms: action on the key. The bytes depend only on creator (pretty-printed
// JSON, fixed field order), so replicas that compute it agree.
//
// If creator is not a valid literal principal name (see
// ValidatePrincipalName; for example it contains a wildcard), it is left out
// rather than being turned into a pattern, and only role/admin is named.
func DefaultPolicy(creator string) []byte {
	principals := []string{"role/" + AdminRole}
	if ValidatePrincipalName(creator) == nil {
		principals = []string{creator, "role/" + AdminRole}
	}
	doc := struct {
		Version   string
		Statement []defaultStatement
	}{
		Version: Version,
		Statement: []defaultStatement{{
			Sid:       DefaultSid,
			Effect:    "Allow",
			Principal: map[string][]string{"Trent": principals},
			Action:    "kms:*",
			Resource:  "*",
		}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("policy: cannot encode default policy: " + err.Error()) // unreachable: only strings
	}
	return append(b, '\n')
}

type defaultStatement struct {
	Sid       string
	Effect    string
	Principal map[string][]string
	Action    string
	Resource  string
}

// ValidatePrincipalName reports whether name can be a Trent principal name
// that policies can name literally: non-empty, at most 256 bytes of valid
// UTF-8, no white space or control characters, no '*' or '?' (policy
// wildcards), and not starting with "role/" (that prefix names roles in a
// Principal element). Authentication should refuse certificates whose
// principal fails this check.
func ValidatePrincipalName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("principal name is empty")
	case len(name) > 256:
		return fmt.Errorf("principal name is longer than 256 bytes")
	case strings.ContainsAny(name, "*?"):
		return fmt.Errorf("principal name %s contains a policy wildcard ('*' or '?')", quote(name))
	case strings.HasPrefix(name, "role/"):
		return fmt.Errorf("principal name %s starts with \"role/\", which policies use for roles", quote(name))
	}
	if msg := checkName(name); msg != "" {
		return fmt.Errorf("principal %s", msg)
	}
	if !validUTF8(name) {
		return fmt.Errorf("principal name is not valid UTF-8")
	}
	return nil
}

// CheckLockout is the policy lockout safety check of PutKeyPolicy and of
// CreateKey with an explicit policy: it returns an error wrapping ErrLockout
// unless p would allow caller to call kms:PutKeyPolicy on keyARN again (the
// AWS rule), so that nobody locks themselves out of changing a key's policy
// by mistake. The hypothetical request carries no encryption context and no
// alias. Callers skip the check when the request sets
// BypassPolicyLockoutSafetyCheck.
func CheckLockout(p *Policy, caller Caller, keyARN string) error {
	if p == nil {
		return fmt.Errorf("%w: no policy", ErrLockout)
	}
	r := p.Evaluate(Request{Caller: caller, Action: actionPutKeyPolicy, Resource: keyARN})
	if r.Decision == Allow {
		return nil
	}
	return fmt.Errorf("%w: the new policy would not allow %s to call kms:PutKeyPolicy on this key (%s); "+
		"fix the policy, or bypass the lockout safety check if this is intended", ErrLockout, quote(caller.Principal), r.Reason)
}

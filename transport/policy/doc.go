// Package policy is Trent's authorization engine: key policies in the JSON
// language users of AWS KMS know, and grants. It is pure: no I/O, no clock,
// no gRPC, standard library only. The transport's authorize hook builds a
// Request from the authenticated caller and the resolved key, evaluates the
// key's Policy, and ORs in the key's grants:
//
//	r := pol.Evaluate(req)
//	switch {
//	case r.Decision == policy.Allow:
//		// allowed by the key policy
//	case r.Decision == policy.ExplicitDeny:
//		// denied; no grant can override an explicit deny (as in AWS)
//	case anyGrant(func(g policy.Grant) bool { return policy.GrantAllows(g, req) }):
//		// allowed by a grant
//	default:
//		// implicitly denied
//	}
//
// # Principals
//
// A caller is a principal name (client certificate URI SAN
// trent://principal/NAME) and zero or more roles (trent://role/ROLE). A
// policy's Principal element is "*" (everyone) or {"Trent": V} where V is a
// string or an array of strings, each "*", a principal name pattern such as
// "app-1" or "team-*", or "role/" followed by a role name pattern. {"AWS": V}
// is accepted as a synonym for {"Trent": V}, so policies copied from AWS
// parse; ARNs are refused because they do not name Trent principals.
// Patterns use the StringLike wildcards '*' and '?'.
//
// # Evaluation
//
// Evaluate returns ExplicitDeny if any Deny statement matches, otherwise
// Allow if any Allow statement matches, otherwise ImplicitDeny. A statement
// matches when the caller matches its Principal, the action its Action
// ("kms:Encrypt", "kms:Encrypt*", "kms:*", "*"; compared without regard to
// case), the key ARN its Resource ("*" or an ARN pattern) and every
// condition holds. Conditions AND across operators and keys and OR across
// the values listed for one key. Their semantics for absent keys follow
// AWS: see DESIGN.md in this folder.
//
// Parse compiles every pattern, so Evaluate, which runs on every request,
// does not allocate.
//
// # Grants
//
// GrantAllows decides one grant; ValidateGrant checks a grant before it is
// stored; CheckChildGrant checks a grant created through another grant's
// CreateGrant operation; SameGrantRequest implements the idempotence of
// CreateGrant with a Name; CanRetire decides RetireGrant. Grant tokens
// (EncodeGrantToken, DecodeGrantToken) carry the whole grant under a MAC so
// that a grant can be used on a node that has not replicated it yet; the
// caller supplies the MAC and, on decode, must still refuse tokens of
// retired or revoked grants and bound their age.
package policy

package transport

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/policy"
)

// Actions are named as in AWS KMS key policies.
const (
	actionCreateKey            = "kms:CreateKey"
	actionDescribeKey          = "kms:DescribeKey"
	actionListKeys             = "kms:ListKeys"
	actionUpdateKeyDescription = "kms:UpdateKeyDescription"
	actionEnableKey            = "kms:EnableKey"
	actionDisableKey           = "kms:DisableKey"
	actionScheduleKeyDeletion  = "kms:ScheduleKeyDeletion"
	actionCancelKeyDeletion    = "kms:CancelKeyDeletion"
	actionEnableKeyRotation    = "kms:EnableKeyRotation"
	actionDisableKeyRotation   = "kms:DisableKeyRotation"
	actionGetKeyRotationStatus = "kms:GetKeyRotationStatus"
	actionRotateKeyOnDemand    = "kms:RotateKeyOnDemand"
	actionListKeyRotations     = "kms:ListKeyRotations"
	actionCreateAlias          = "kms:CreateAlias"
	actionUpdateAlias          = "kms:UpdateAlias"
	actionDeleteAlias          = "kms:DeleteAlias"
	actionListAliases          = "kms:ListAliases"
	actionTagResource          = "kms:TagResource"
	actionUntagResource        = "kms:UntagResource"
	actionListResourceTags     = "kms:ListResourceTags"
	actionEncrypt              = "kms:Encrypt"
	actionDecrypt              = "kms:Decrypt"
	actionReEncryptFrom        = "kms:ReEncryptFrom"
	actionReEncryptTo          = "kms:ReEncryptTo"
	actionGenerateDataKey      = "kms:GenerateDataKey"
	actionGenerateDataKeyNoPT  = "kms:GenerateDataKeyWithoutPlaintext"
	actionGenerateRandom       = "kms:GenerateRandom"
	actionPutKeyPolicy         = "kms:PutKeyPolicy"
	actionGetKeyPolicy         = "kms:GetKeyPolicy"
	actionListKeyPolicies      = "kms:ListKeyPolicies"
	actionCreateGrant          = "kms:CreateGrant"
	actionListGrants           = "kms:ListGrants"
	actionListRetirableGrants  = "kms:ListRetirableGrants"
	actionRetireGrant          = "kms:RetireGrant"
	actionRevokeGrant          = "kms:RevokeGrant"
	actionReplicateKey         = "kms:ReplicateKey"
	actionUpdatePrimaryRegion  = "kms:UpdatePrimaryRegion"
	actionClusterStatus        = "trent:ClusterStatus"
	actionRemoveNode           = "trent:RemoveNode"
	actionManagementEvents     = "trent:ManagementEvents"
)

// maxGrantTokens is how many grant tokens one request may carry (the AWS
// limit); each costs an HMAC to check.
const maxGrantTokens = 10

// principal names the caller, as recorded in commands and audit records.
func principal(ctx context.Context) string { return callerFrom(ctx).Principal }

// access describes one request for authorization: what the caller wants to
// do, to which key, and the facts conditions and grant constraints look at.
type access struct {
	action string
	key    *fsmpb.Key        // nil for actions not tied to one key
	alias  string            // alias the caller named the key by, "" if none
	ec     map[string]string // the request's encryption context, nil if the operation has none
	tokens []string          // grant tokens the caller presented
	// policyOnly: only the key policy may allow the action (RevokeGrant,
	// and RetireGrant by a principal the grant does not name).
	policyOnly bool
}

// authorize decides whether the caller may perform the action. Every handler
// calls it after its read barrier (so the policy and grants it sees are at
// least as new as any change acknowledged before the request arrived) and
// before doing any work.
func (s *Server) authorize(ctx context.Context, a access) error {
	_, err := s.authorizeVia(ctx, a)
	return err
}

// authorizeVia is authorize that also returns the grant that allowed the
// request, nil when the key policy did. CreateGrant needs it: a grant made
// through a grant may not be wider than its parent.
//
// Actions not tied to a key (CreateKey, ListKeys, ListAliases without a key,
// GenerateRandom) are open to every authenticated principal, as an AWS
// account's principals get them from IAM; the cluster actions are limited
// to the admin role by the authentication interceptor before this runs.
//
// For a key, the key policy decides first; an explicit Deny is final.
// Otherwise a grant stored for the key, or one carried by a grant token, may
// allow the request.
func (s *Server) authorizeVia(ctx context.Context, a access) (*policy.Grant, error) {
	if len(a.tokens) > maxGrantTokens {
		return nil, invalid("GrantTokens", "%d tokens exceed the maximum %d", len(a.tokens), maxGrantTokens)
	}
	if a.key == nil {
		return nil, nil
	}
	noteKey(ctx, a.key.GetKeyId())
	cp, err := s.policies.compiled(s.region(), a.key)
	if err != nil {
		return nil, err
	}
	req := policy.Request{
		Caller:            callerFrom(ctx),
		Action:            a.action,
		Resource:          cp.arn,
		EncryptionContext: a.ec,
		ViaAlias:          a.alias,
	}
	res := cp.pol.Evaluate(req)
	switch res.Decision {
	case policy.Allow:
		return nil, nil
	case policy.ExplicitDeny:
		return nil, denied(req, res.Reason)
	}
	if a.policyOnly {
		return nil, denied(req, res.Reason)
	}
	for _, g := range s.fsm.Grants(a.key.GetKeyId()) {
		if g.GetGranteePrincipal() != req.Caller.Principal {
			continue
		}
		pg := grantFromRecord(g)
		if policy.GrantAllows(pg, req) {
			noteGrant(ctx, pg.ID)
			return &pg, nil
		}
	}
	var tokenErr error
	for _, tok := range a.tokens {
		g, err := s.grantFromToken(ctx, tok)
		if err != nil {
			tokenErr = err
			continue
		}
		if policy.GrantAllows(g, req) {
			noteGrant(ctx, g.ID)
			return &g, nil
		}
	}
	if tokenErr != nil {
		return nil, tokenErr
	}
	return nil, denied(req, res.Reason)
}

func denied(req policy.Request, reason string) error {
	who := req.Caller.Principal
	if who == "" {
		who = "an unauthenticated caller"
	}
	return fmt.Errorf("%w: %s is not authorized to perform %s on %s: %s", ErrAccessDenied, who, req.Action, req.Resource, reason)
}

// grantFromRecord converts a stored grant to the policy engine's form.
func grantFromRecord(g *fsmpb.Grant) policy.Grant {
	pg := policy.Grant{
		ID:                   g.GetGrantId(),
		Name:                 g.GetName(),
		KeyID:                g.GetKeyId(),
		Grantee:              g.GetGranteePrincipal(),
		RetiringPrincipal:    g.GetRetiringPrincipal(),
		Operations:           g.GetOperations(),
		Issuer:               g.GetIssuingPrincipal(),
		CreationTimeUnixNano: g.GetCreationTimeUnixNano(),
	}
	if len(g.GetEncryptionContextEquals()) > 0 || len(g.GetEncryptionContextSubset()) > 0 {
		pg.Constraints = &policy.Constraints{
			EncryptionContextEquals: g.GetEncryptionContextEquals(),
			EncryptionContextSubset: g.GetEncryptionContextSubset(),
		}
	}
	return pg
}

// policyCache holds each key's parsed policy, so the data plane parses a
// policy once per change instead of once per request. Stored key records are
// immutable, so an entry made for the same record is current; a new record
// (rotation, a tag) with the same policy bytes reuses the parse.
type policyCache struct {
	m sync.Map // key id → *compiledPolicy
}

type compiledPolicy struct {
	key *fsmpb.Key
	raw []byte
	arn string
	pol *policy.Policy
}

// compiled returns the parsed policy of k. A key stored before policies
// existed has the default policy for its creator.
func (c *policyCache) compiled(region string, k *fsmpb.Key) (*compiledPolicy, error) {
	if v, ok := c.m.Load(k.GetKeyId()); ok {
		cp := v.(*compiledPolicy)
		if cp.key == k {
			return cp, nil
		}
		if bytes.Equal(cp.raw, effectivePolicy(k)) && cp.arn == keyARN(region, k.GetKeyId()) {
			next := *cp
			next.key = k
			c.m.Store(k.GetKeyId(), &next)
			return &next, nil
		}
	}
	raw := effectivePolicy(k)
	pol, err := policy.Parse(raw)
	if err != nil {
		// Stored policies were parsed before they were proposed; one that
		// no longer parses means this build reads the language differently.
		// Refuse rather than guess.
		return nil, fmt.Errorf("key %s: stored key policy does not parse: %v", k.GetKeyId(), err)
	}
	cp := &compiledPolicy{key: k, raw: raw, arn: keyARN(region, k.GetKeyId()), pol: pol}
	c.m.Store(k.GetKeyId(), cp)
	return cp, nil
}

func effectivePolicy(k *fsmpb.Key) []byte {
	if len(k.GetPolicy()) > 0 {
		return k.GetPolicy()
	}
	return policy.DefaultPolicy(k.GetCreator())
}

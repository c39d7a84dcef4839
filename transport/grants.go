package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/policy"
)

// newGrantID returns 64 hex digits, the shape of AWS grant ids.
func newGrantID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func validateGrantPrincipal(field, name string, required bool) error {
	if name == "" && !required {
		return nil
	}
	if err := policy.ValidatePrincipalName(name); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

func grantFromRequest(req *kmspb.CreateGrantRequest) (policy.Grant, error) {
	if err := validateGrantPrincipal("GranteePrincipal", req.GetGranteePrincipal(), true); err != nil {
		return policy.Grant{}, err
	}
	if err := validateGrantPrincipal("RetiringPrincipal", req.GetRetiringPrincipal(), false); err != nil {
		return policy.Grant{}, err
	}
	g := policy.Grant{
		Name:              req.GetName(),
		Grantee:           req.GetGranteePrincipal(),
		RetiringPrincipal: req.GetRetiringPrincipal(),
		Operations:        req.GetOperations(),
	}
	if c := req.GetConstraints(); c != nil {
		for _, m := range []map[string]string{c.GetEncryptionContextEquals(), c.GetEncryptionContextSubset()} {
			if err := validateContext("Constraints", m); err != nil {
				return policy.Grant{}, err
			}
		}
		if len(c.GetEncryptionContextEquals()) > 0 || len(c.GetEncryptionContextSubset()) > 0 {
			g.Constraints = &policy.Constraints{
				EncryptionContextEquals: c.GetEncryptionContextEquals(),
				EncryptionContextSubset: c.GetEncryptionContextSubset(),
			}
		}
	}
	return g, nil
}

func (s *Server) CreateGrant(ctx context.Context, req *kmspb.CreateGrantRequest) (*kmspb.CreateGrantResponse, error) {
	if err := requireKeyRef("KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	g, err := grantFromRequest(req)
	if err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	k, alias, err := s.resolveKeyVia(ctx, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	g.KeyID = k.GetKeyId()
	if err := policy.ValidateGrant(g); err != nil {
		return nil, err
	}
	parent, err := s.authorizeVia(ctx, access{action: actionCreateGrant, key: k, alias: alias, tokens: req.GetGrantTokens()})
	if err != nil {
		return nil, err
	}
	if parent != nil {
		if err := policy.CheckChildGrant(*parent, g); err != nil {
			return nil, err
		}
	}
	if req.GetDryRun() {
		return nil, fmt.Errorf("%w: CreateGrant would have succeeded", ErrDryRun)
	}
	if g.ID, err = newGrantID(); err != nil {
		return nil, err
	}
	g.Issuer = principal(ctx)
	g.CreationTimeUnixNano = s.now().UnixNano()
	cmd := &fsmpb.CreateGrant{Grant: grantRecord(g)}
	if region := s.fsm.Region(); region != nil && len(region.GetGrantTokenKey()) == 0 {
		// The first grant of the region brings the secret its tokens are
		// authenticated with; Apply keeps the first one proposed.
		dk := region.GetActiveDomainKeyId()
		if cmd.GrantTokenKey, err = s.hsm.GenerateKeyToken(ctx, dk); err != nil {
			return nil, fmt.Errorf("generate grant token key: %w", err)
		}
		cmd.GrantTokenDomainKeyId = dk
	}
	res, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_CreateGrant{CreateGrant: cmd}})
	if err != nil {
		return nil, err
	}
	stored := grantFromRecord(res.Grant) // the earlier grant, when this request repeats one by Name
	if len(s.fsm.Region().GetGrantTokenKey()) == 0 {
		// A follower forwarded the region's first grant and has not applied
		// it yet; the token key arrives with it.
		if err := s.readBarrier(ctx); err != nil {
			return nil, err
		}
	}
	noteGrant(ctx, stored.ID)
	token, err := s.issueGrantToken(ctx, stored)
	if err != nil {
		return nil, err
	}
	return &kmspb.CreateGrantResponse{GrantId: stored.ID, GrantToken: token}, nil
}

func grantRecord(g policy.Grant) *fsmpb.Grant {
	r := &fsmpb.Grant{
		GrantId:              g.ID,
		KeyId:                g.KeyID,
		Name:                 g.Name,
		GranteePrincipal:     g.Grantee,
		RetiringPrincipal:    g.RetiringPrincipal,
		Operations:           g.Operations,
		IssuingPrincipal:     g.Issuer,
		CreationTimeUnixNano: g.CreationTimeUnixNano,
	}
	if c := g.Constraints; c != nil {
		r.EncryptionContextEquals = c.EncryptionContextEquals
		r.EncryptionContextSubset = c.EncryptionContextSubset
	}
	return r
}

func (s *Server) grantListEntry(g *fsmpb.Grant) *kmspb.GrantListEntry {
	e := &kmspb.GrantListEntry{
		KeyId:             keyARN(s.region(), g.GetKeyId()),
		GrantId:           g.GetGrantId(),
		Name:              g.GetName(),
		CreationDate:      unixSeconds(g.GetCreationTimeUnixNano()),
		GranteePrincipal:  g.GetGranteePrincipal(),
		RetiringPrincipal: g.GetRetiringPrincipal(),
		IssuingPrincipal:  g.GetIssuingPrincipal(),
		Operations:        g.GetOperations(),
	}
	if len(g.GetEncryptionContextEquals()) > 0 || len(g.GetEncryptionContextSubset()) > 0 {
		e.Constraints = &kmspb.GrantConstraints{
			EncryptionContextEquals: g.GetEncryptionContextEquals(),
			EncryptionContextSubset: g.GetEncryptionContextSubset(),
		}
	}
	return e
}

// ListGrants pages through a key's grants; GrantId and GranteePrincipal
// filter a page, so a filtered page may hold fewer than Limit grants.
func (s *Server) ListGrants(ctx context.Context, req *kmspb.ListGrantsRequest) (*kmspb.ListGrantsResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionListGrants}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	grants, truncated := s.fsm.ListGrants(k.GetKeyId(), req.GetMarker(), limit)
	return s.grantPage(grants, truncated, func(g *fsmpb.Grant) bool {
		return (req.GetGrantId() == "" || g.GetGrantId() == req.GetGrantId()) &&
			(req.GetGranteePrincipal() == "" || g.GetGranteePrincipal() == req.GetGranteePrincipal())
	}), nil
}

// grantPage is one page of a grant listing: the grants keep passes, and the
// marker of the last grant read, so filtered pages still advance.
func (s *Server) grantPage(grants []*fsmpb.Grant, truncated bool, keep func(*fsmpb.Grant) bool) *kmspb.ListGrantsResponse {
	resp := &kmspb.ListGrantsResponse{Truncated: truncated}
	for _, g := range grants {
		if keep(g) {
			resp.Grants = append(resp.Grants, s.grantListEntry(g))
		}
	}
	if truncated && len(grants) > 0 {
		resp.NextMarker = grants[len(grants)-1].GetGrantId()
	}
	return resp
}

// ListRetirableGrants lists the grants a principal may retire. A caller may
// list its own; the admin role may list anyone's.
func (s *Server) ListRetirableGrants(ctx context.Context, req *kmspb.ListRetirableGrantsRequest) (*kmspb.ListGrantsResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	if err := validateGrantPrincipal("RetiringPrincipal", req.GetRetiringPrincipal(), true); err != nil {
		return nil, err
	}
	caller := callerFrom(ctx)
	if caller.Principal != req.GetRetiringPrincipal() && !slices.Contains(caller.Roles, policy.AdminRole) {
		return nil, fmt.Errorf("%w: %s may list only its own retirable grants (the admin role may list any principal's)", ErrAccessDenied, caller.Principal)
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	grants, truncated := s.fsm.ListRetirableGrants(req.GetRetiringPrincipal(), req.GetMarker(), limit)
	return s.grantPage(grants, truncated, func(*fsmpb.Grant) bool { return true }), nil
}

// RetireGrant removes a grant at the request of its retiring principal, its
// grantee (if the grant includes RetireGrant), or a principal the key policy
// allows kms:RetireGrant. The grant is named by its token or by key and id.
func (s *Server) RetireGrant(ctx context.Context, req *kmspb.RetireGrantRequest) (*kmspb.RetireGrantResponse, error) {
	keyRef, grantID := req.GetKeyId(), req.GetGrantId()
	switch {
	case req.GetGrantToken() != "" && (keyRef != "" || grantID != ""):
		return nil, invalid("GrantToken", "give GrantToken, or KeyId and GrantId, not both")
	case req.GetGrantToken() != "":
		g, err := s.grantFromToken(ctx, req.GetGrantToken())
		if err != nil {
			return nil, err
		}
		keyRef, grantID = g.KeyID, g.ID
	case keyRef == "" || grantID == "":
		return nil, invalid("GrantId", "give GrantToken, or KeyId and GrantId")
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	k, alias, err := s.resolveKeyVia(ctx, "KeyId", keyRef)
	if err != nil {
		return nil, err
	}
	g, err := s.storedGrant(k, grantID)
	if err != nil {
		return nil, err
	}
	noteGrant(ctx, g.ID)
	if !policy.CanRetire(g, callerFrom(ctx)) {
		if err := s.authorize(ctx, access{action: actionRetireGrant, key: k, alias: alias, policyOnly: true}); err != nil {
			return nil, err
		}
	} else {
		noteKey(ctx, k.GetKeyId())
	}
	if req.GetDryRun() {
		return nil, fmt.Errorf("%w: RetireGrant would have succeeded", ErrDryRun)
	}
	if _, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_RemoveGrant{RemoveGrant: &fsmpb.RemoveGrant{
		KeyId: k.GetKeyId(), GrantId: g.ID,
	}}}); err != nil {
		return nil, err
	}
	return &kmspb.RetireGrantResponse{}, nil
}

// RevokeGrant removes a grant; only the key policy can allow it.
func (s *Server) RevokeGrant(ctx context.Context, req *kmspb.RevokeGrantRequest) (*kmspb.RevokeGrantResponse, error) {
	if req.GetGrantId() == "" {
		return nil, invalid("GrantId", "is required")
	}
	k, err := s.readKey(ctx, access{action: actionRevokeGrant, policyOnly: true}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	g, err := s.storedGrant(k, req.GetGrantId())
	if err != nil {
		return nil, err
	}
	noteGrant(ctx, g.ID)
	if req.GetDryRun() {
		return nil, fmt.Errorf("%w: RevokeGrant would have succeeded", ErrDryRun)
	}
	if _, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_RemoveGrant{RemoveGrant: &fsmpb.RemoveGrant{
		KeyId: k.GetKeyId(), GrantId: g.ID, Revoke: true,
	}}}); err != nil {
		return nil, err
	}
	return &kmspb.RevokeGrantResponse{}, nil
}

func (s *Server) storedGrant(k *fsmpb.Key, grantID string) (policy.Grant, error) {
	g, ok := s.fsm.Grant(grantID)
	if !ok || g.GetKeyId() != k.GetKeyId() {
		return policy.Grant{}, fmt.Errorf("%w: GrantId: key %s has no grant %s", fsm.ErrNotFound, k.GetKeyId(), grantID)
	}
	return grantFromRecord(g), nil
}

package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/policy"
)

// grantTokenKeyVersion names the region's grant token secret in the key
// cache. Key version ids are 16 random bytes, so this longer name cannot
// collide with one.
var grantTokenKeyVersion = []byte("region grant token key")

// grantTokenKey returns the region's grant token secret, unwrapped by the
// HSM on first use and cached like a SOFTWARE backing key. The caller must
// release the entry.
func (s *Server) grantTokenKey(ctx context.Context) (*cachedKey, error) {
	region := s.fsm.Region()
	if region == nil || len(region.GetGrantTokenKey()) == 0 {
		return nil, fmt.Errorf("%w: this region has issued no grant tokens", ErrInvalidGrantToken)
	}
	return s.backingKey(ctx, &fsmpb.KeyVersion{
		VersionId:   grantTokenKeyVersion,
		KeyToken:    region.GetGrantTokenKey(),
		DomainKeyId: region.GetGrantTokenDomainKeyId(),
	})
}

func (s *Server) issueGrantToken(ctx context.Context, g policy.Grant) (string, error) {
	entry, err := s.grantTokenKey(ctx)
	if err != nil {
		return "", err
	}
	defer entry.release()
	return policy.EncodeGrantToken(g, func(msg []byte) []byte {
		m := hmac.New(sha256.New, entry.secret.Bytes())
		m.Write(msg)
		return m.Sum(nil)
	}), nil
}

// grantFromToken checks a grant token and returns the grant it carries. A
// token lets a grant work on a node that has not applied it yet, so it is
// honoured only while the grant may still be on its way: for
// fsm.GrantTokenMaxAge after creation, and never once this node knows the
// grant was retired or revoked. A grant the node already holds is used in
// its stored form.
func (s *Server) grantFromToken(ctx context.Context, tok string) (policy.Grant, error) {
	entry, err := s.grantTokenKey(ctx)
	if err != nil {
		return policy.Grant{}, err
	}
	g, err := policy.DecodeGrantToken(tok, func(msg, tag []byte) bool {
		m := hmac.New(sha256.New, entry.secret.Bytes())
		m.Write(msg)
		return hmac.Equal(m.Sum(nil), tag)
	})
	entry.release()
	if err != nil {
		return policy.Grant{}, fmt.Errorf("%w: %v", ErrInvalidGrantToken, err)
	}
	if stored, ok := s.fsm.Grant(g.ID); ok {
		return grantFromRecord(stored), nil
	}
	if s.fsm.GrantRemoved(g.ID) {
		return policy.Grant{}, fmt.Errorf("%w: grant %s was retired or revoked", ErrInvalidGrantToken, g.ID)
	}
	age := s.now().Sub(time.Unix(0, g.CreationTimeUnixNano))
	if age > fsm.GrantTokenMaxAge {
		return policy.Grant{}, fmt.Errorf("%w: the token of grant %s is older than %s and the grant is not in this region", ErrInvalidGrantToken, g.ID, fsm.GrantTokenMaxAge)
	}
	return g, nil
}

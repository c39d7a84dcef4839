package transport

import (
	"context"

	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

func (s *Server) CreateAlias(ctx context.Context, req *kmspb.CreateAliasRequest) (*kmspb.CreateAliasResponse, error) {
	if err := validateAliasName("AliasName", req.GetAliasName()); err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionCreateAlias}, "TargetKeyId", req.GetTargetKeyId())
	if err != nil {
		return nil, err
	}
	noteResolved(ctx, req.GetAliasName(), k.GetKeyId())
	_, err = s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_CreateAlias{CreateAlias: &fsmpb.CreateAlias{AliasName: req.GetAliasName(), TargetKeyId: k.GetKeyId()}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.CreateAliasResponse{}, nil
}

// UpdateAlias needs kms:UpdateAlias on both the key the alias names now and
// the key it is to name, as in AWS KMS: moving an alias changes what
// requests through it reach.
func (s *Server) UpdateAlias(ctx context.Context, req *kmspb.UpdateAliasRequest) (*kmspb.UpdateAliasResponse, error) {
	if err := validateAliasName("AliasName", req.GetAliasName()); err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionUpdateAlias}, "TargetKeyId", req.GetTargetKeyId())
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAliasTarget(ctx, actionUpdateAlias, req.GetAliasName()); err != nil {
		return nil, err
	}
	noteResolved(ctx, req.GetAliasName(), k.GetKeyId())
	_, err = s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_UpdateAlias{UpdateAlias: &fsmpb.UpdateAlias{AliasName: req.GetAliasName(), TargetKeyId: k.GetKeyId()}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.UpdateAliasResponse{}, nil
}

// DeleteAlias needs kms:DeleteAlias on the key the alias names.
func (s *Server) DeleteAlias(ctx context.Context, req *kmspb.DeleteAliasRequest) (*kmspb.DeleteAliasResponse, error) {
	if err := validateAliasName("AliasName", req.GetAliasName()); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	if err := s.authorizeAliasTarget(ctx, actionDeleteAlias, req.GetAliasName()); err != nil {
		return nil, err
	}
	_, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_DeleteAlias{DeleteAlias: &fsmpb.DeleteAlias{AliasName: req.GetAliasName()}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.DeleteAliasResponse{}, nil
}

// authorizeAliasTarget authorizes action on the key alias names now. The
// caller has passed a read barrier.
func (s *Server) authorizeAliasTarget(ctx context.Context, action, alias string) error {
	k, err := s.resolveKey(ctx, "AliasName", alias)
	if err != nil {
		return err
	}
	return s.authorize(ctx, access{action: action, key: k, alias: alias})
}

func (s *Server) ListAliases(ctx context.Context, req *kmspb.ListAliasesRequest) (*kmspb.ListAliasesResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	keyID := ""
	if req.GetKeyId() != "" {
		k, err := s.readKey(ctx, access{action: actionListAliases}, "KeyId", req.GetKeyId())
		if err != nil {
			return nil, err
		}
		keyID = k.GetKeyId()
	} else {
		if err := s.readBarrier(ctx); err != nil {
			return nil, err
		}
	}
	aliases, truncated := s.fsm.ListAliases(keyID, req.GetMarker(), limit)
	resp := &kmspb.ListAliasesResponse{Truncated: truncated}
	for _, a := range aliases {
		resp.Aliases = append(resp.Aliases, &kmspb.AliasListEntry{
			AliasName:       a.GetName(),
			AliasArn:        aliasARN(s.region(), a.GetName()),
			TargetKeyId:     a.GetTargetKeyId(),
			CreationDate:    unixSeconds(a.GetCreationTimeUnixNano()),
			LastUpdatedDate: unixSeconds(a.GetLastUpdatedTimeUnixNano()),
		})
	}
	if truncated && len(aliases) > 0 {
		resp.NextMarker = aliases[len(aliases)-1].GetName()
	}
	return resp, nil
}

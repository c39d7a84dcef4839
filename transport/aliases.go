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
	k, err := s.readKey(ctx, actionCreateAlias, "TargetKeyId", req.GetTargetKeyId())
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

func (s *Server) UpdateAlias(ctx context.Context, req *kmspb.UpdateAliasRequest) (*kmspb.UpdateAliasResponse, error) {
	if err := validateAliasName("AliasName", req.GetAliasName()); err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, actionUpdateAlias, "TargetKeyId", req.GetTargetKeyId())
	if err != nil {
		return nil, err
	}
	noteResolved(ctx, req.GetAliasName(), k.GetKeyId())
	_, err = s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_UpdateAlias{UpdateAlias: &fsmpb.UpdateAlias{AliasName: req.GetAliasName(), TargetKeyId: k.GetKeyId()}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.UpdateAliasResponse{}, nil
}

func (s *Server) DeleteAlias(ctx context.Context, req *kmspb.DeleteAliasRequest) (*kmspb.DeleteAliasResponse, error) {
	if err := validateAliasName("AliasName", req.GetAliasName()); err != nil {
		return nil, err
	}
	noteResolved(ctx, req.GetAliasName(), "")
	if err := s.authorize(ctx, actionDeleteAlias, nil); err != nil {
		return nil, err
	}
	_, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_DeleteAlias{DeleteAlias: &fsmpb.DeleteAlias{AliasName: req.GetAliasName()}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.DeleteAliasResponse{}, nil
}

func (s *Server) ListAliases(ctx context.Context, req *kmspb.ListAliasesRequest) (*kmspb.ListAliasesResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	keyID := ""
	if req.GetKeyId() != "" {
		k, err := s.readKey(ctx, actionListAliases, "KeyId", req.GetKeyId())
		if err != nil {
			return nil, err
		}
		keyID = k.GetKeyId()
	} else {
		if err := s.authorize(ctx, actionListAliases, nil); err != nil {
			return nil, err
		}
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

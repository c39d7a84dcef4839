package transport

import (
	"context"
	"strconv"
	"time"

	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

const (
	rotationAutomatic = "AUTOMATIC"
	rotationOnDemand  = "ON_DEMAND"
)

func (s *Server) EnableKeyRotation(ctx context.Context, req *kmspb.EnableKeyRotationRequest) (*kmspb.EnableKeyRotationResponse, error) {
	days := req.GetRotationPeriodInDays()
	if days == 0 {
		days = defaultRotationDays
	}
	if days < minRotationDays || days > maxRotationDays {
		return nil, invalid("RotationPeriodInDays", "%d is outside %d..%d", days, minRotationDays, maxRotationDays)
	}
	_, err := s.proposeForKey(ctx, actionEnableKeyRotation, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_SetKeyRotation{SetKeyRotation: &fsmpb.SetKeyRotation{KeyId: id, Enabled: true, RotationPeriodDays: days}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.EnableKeyRotationResponse{}, nil
}

func (s *Server) DisableKeyRotation(ctx context.Context, req *kmspb.DisableKeyRotationRequest) (*kmspb.DisableKeyRotationResponse, error) {
	_, err := s.proposeForKey(ctx, actionDisableKeyRotation, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_SetKeyRotation{SetKeyRotation: &fsmpb.SetKeyRotation{KeyId: id}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.DisableKeyRotationResponse{}, nil
}

func (s *Server) GetKeyRotationStatus(ctx context.Context, req *kmspb.GetKeyRotationStatusRequest) (*kmspb.GetKeyRotationStatusResponse, error) {
	k, err := s.readKey(ctx, access{action: actionGetKeyRotationStatus}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	resp := &kmspb.GetKeyRotationStatusResponse{
		KeyRotationEnabled: k.GetRotationEnabled(),
		KeyId:              keyARN(s.region(), k.GetKeyId()),
	}
	if k.GetRotationEnabled() {
		resp.RotationPeriodInDays = k.GetRotationPeriodDays()
		resp.NextRotationDate = unixSeconds(k.GetNextRotationTimeUnixNano())
	}
	return resp, nil
}

func (s *Server) RotateKeyOnDemand(ctx context.Context, req *kmspb.RotateKeyOnDemandRequest) (*kmspb.RotateKeyOnDemandResponse, error) {
	k, err := s.readKey(ctx, access{action: actionRotateKeyOnDemand}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	if err := s.rotate(ctx, k.GetKeyId(), rotationOnDemand); err != nil {
		return nil, err
	}
	return &kmspb.RotateKeyOnDemandResponse{KeyId: keyARN(s.region(), k.GetKeyId())}, nil
}

// rotate adds a new version, generated in the HSM, to key id.
func (s *Server) rotate(ctx context.Context, keyID, rotationType string) error {
	version, err := s.newKeyVersion(ctx, rotationType)
	if err != nil {
		return err
	}
	noteVersion(ctx, keyID, version.GetVersionId())
	_, err = s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_RotateKey{RotateKey: &fsmpb.RotateKey{KeyId: keyID, Version: version}}})
	return err
}

// ListKeyRotations lists the versions added after the first, oldest first,
// as AWS does; the marker is the position of the next entry.
func (s *Server) ListKeyRotations(ctx context.Context, req *kmspb.ListKeyRotationsRequest) (*kmspb.ListKeyRotationsResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	start := 0
	if req.GetMarker() != "" {
		if start, err = strconv.Atoi(req.GetMarker()); err != nil || start < 0 {
			return nil, invalid("Marker", "%q is not a marker this operation returned", req.GetMarker())
		}
	}
	k, err := s.readKey(ctx, access{action: actionListKeyRotations}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	rotations := k.GetVersions()
	if len(rotations) > 0 {
		rotations = rotations[1:]
	}
	resp := &kmspb.ListKeyRotationsResponse{}
	for i := start; i < len(rotations) && len(resp.Rotations) < limit; i++ {
		v := rotations[i]
		resp.Rotations = append(resp.Rotations, &kmspb.KeyRotation{
			KeyId:         k.GetKeyId(),
			KeyMaterialId: materialID(v),
			RotationDate:  unixSeconds(v.GetCreationTimeUnixNano()),
			RotationType:  v.GetRotationType(),
		})
	}
	if next := start + len(resp.Rotations); next < len(rotations) {
		resp.Truncated = true
		resp.NextMarker = strconv.Itoa(next)
	}
	return resp, nil
}

// runLeaderWork proposes the time-driven changes while this node leads:
// automatic rotations and deletions whose waiting period has ended.
func (s *Server) runLeaderWork() {
	ticker := time.NewTicker(s.cfg.LeaderTick)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		if !s.raft.IsLeader() {
			continue
		}
		s.leaderTick()
	}
}

func (s *Server) leaderTick() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProposeTimeout)
	defer cancel()
	rotate, expired := s.fsm.KeysDue(s.now().UnixNano())
	for _, id := range rotate {
		if err := s.rotate(ctx, id, rotationAutomatic); err != nil {
			s.log.Warn("automatic rotation failed", "key", id, "err", err)
		}
	}
	for _, id := range expired {
		k, ok := s.fsm.Key(id)
		_, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_DeleteKey{DeleteKey: &fsmpb.DeleteKey{KeyId: id}}})
		if err != nil {
			s.log.Warn("key deletion failed", "key", id, "err", err)
			continue
		}
		s.log.Info("key deleted after its waiting period", "key", id)
		if ok {
			s.dropCachedVersions(k)
		}
	}
}

func (s *Server) dropCachedVersions(k *fsmpb.Key) {
	ids := make([][]byte, 0, len(k.GetVersions()))
	for _, v := range k.GetVersions() {
		ids = append(ids, v.GetVersionId())
	}
	s.keys.drop(ids...)
}

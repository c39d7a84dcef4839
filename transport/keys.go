package transport

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/google/uuid"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/policy"
)

const maxTagsPerKey = 50

func validateCreateKey(req *kmspb.CreateKeyRequest) (map[string]string, error) {
	if err := validateDescription(req.GetDescription()); err != nil {
		return nil, err
	}
	if u := req.GetKeyUsage(); u != "" && u != crypto.KeyUsageEncryptDecrypt {
		return nil, fmt.Errorf("%w: KeyUsage %q: only %s keys are supported", ErrUnsupported, u, crypto.KeyUsageEncryptDecrypt)
	}
	if spec := req.GetKeySpec(); spec != "" && spec != crypto.KeySpecSymmetricDefault {
		return nil, fmt.Errorf("%w: KeySpec %q: only %s keys are supported", ErrUnsupported, spec, crypto.KeySpecSymmetricDefault)
	}
	switch req.GetProtectionLevel() {
	case "", protectionSoftware, protectionHSM:
	default:
		return nil, invalid("ProtectionLevel", "%q must be %s or %s", req.GetProtectionLevel(), protectionSoftware, protectionHSM)
	}
	return validateKeyTags(req.GetTags())
}

// validateKeyTags checks the optional tags of a key being created (CreateKey,
// ReplicateKey).
func validateKeyTags(tags []*kmspb.Tag) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	if len(tags) > maxTagsPerKey {
		return nil, invalid("Tags", "%d tags exceed the maximum %d", len(tags), maxTagsPerKey)
	}
	return validateTags(tags)
}

func (s *Server) CreateKey(ctx context.Context, req *kmspb.CreateKeyRequest) (*kmspb.CreateKeyResponse, error) {
	tags, err := validateCreateKey(req)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, access{action: actionCreateKey}); err != nil {
		return nil, err
	}
	keyID := uuid.NewString()
	var multiRegion *fsmpb.MultiRegion
	if req.GetMultiRegion() {
		if keyID, err = newMRKID(); err != nil {
			return nil, err
		}
		// Apply fills the record in (primary here, epoch 1): it alone knows
		// the region name for certain.
		multiRegion = &fsmpb.MultiRegion{}
	}
	keyPolicy := policy.DefaultPolicy(principal(ctx))
	if req.GetPolicy() != "" {
		if err := s.checkPolicy(ctx, req.GetPolicy(), keyID, req.GetBypassPolicyLockoutSafetyCheck()); err != nil {
			return nil, err
		}
		keyPolicy = []byte(req.GetPolicy())
	}
	version, err := s.newKeyVersion(ctx, "")
	if err != nil {
		return nil, err
	}
	key := &fsmpb.Key{
		KeyId:           keyID,
		Description:     req.GetDescription(),
		KeySpec:         crypto.KeySpecSymmetricDefault,
		KeyUsage:        crypto.KeyUsageEncryptDecrypt,
		ProtectionLevel: defaulted(req.GetProtectionLevel(), protectionSoftware),
		Versions:        []*fsmpb.KeyVersion{version},
		Tags:            tags,
		Origin:          "TRENT",
		Creator:         principal(ctx),
		Policy:          keyPolicy,
		MultiRegion:     multiRegion,
	}
	noteKey(ctx, key.KeyId)
	noteVersion(ctx, key.KeyId, version.GetVersionId())
	res, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_CreateKey{CreateKey: &fsmpb.CreateKey{Key: key}}})
	if err != nil {
		return nil, err
	}
	return &kmspb.CreateKeyResponse{KeyMetadata: s.keyMetadata(res.Key)}, nil
}

// newKeyVersion generates backing key material in the HSM, wrapped under the
// region's active domain key, with a fresh random version id.
func (s *Server) newKeyVersion(ctx context.Context, rotationType string) (*fsmpb.KeyVersion, error) {
	region := s.fsm.Region()
	if region == nil || region.GetActiveDomainKeyId() == "" {
		return nil, fmt.Errorf("%w: the region has no domain key yet", ErrNotServing)
	}
	dk := region.GetActiveDomainKeyId()
	token, err := s.hsm.GenerateKeyToken(ctx, dk)
	if err != nil {
		return nil, fmt.Errorf("generate key material: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return &fsmpb.KeyVersion{
		VersionId:            id,
		KeyToken:             token,
		DomainKeyId:          dk,
		CreationTimeUnixNano: s.now().UnixNano(),
		RotationType:         rotationType,
	}, nil
}

// readKey is the common start of a request about one key: linearizable read,
// resolution, authorization.
// a names the action and may carry grant tokens; readKey fills in the key
// and the alias.
func (s *Server) readKey(ctx context.Context, a access, field, ref string) (*fsmpb.Key, error) {
	if err := requireKeyRef(field, ref); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	k, alias, err := s.resolveKeyVia(ctx, field, ref)
	if err != nil {
		return nil, err
	}
	a.key, a.alias = k, alias
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	return k, nil
}

func (s *Server) DescribeKey(ctx context.Context, req *kmspb.DescribeKeyRequest) (*kmspb.DescribeKeyResponse, error) {
	k, err := s.readKey(ctx, access{action: actionDescribeKey, tokens: req.GetGrantTokens()}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	return &kmspb.DescribeKeyResponse{KeyMetadata: s.keyMetadata(k)}, nil
}

func (s *Server) ListKeys(ctx context.Context, req *kmspb.ListKeysRequest) (*kmspb.ListKeysResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	keys, truncated := s.fsm.ListKeys(req.GetMarker(), limit)
	resp := &kmspb.ListKeysResponse{Truncated: truncated}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, &kmspb.KeyListEntry{KeyId: k.GetKeyId(), KeyArn: keyARN(s.region(), k.GetKeyId())})
	}
	if truncated && len(keys) > 0 {
		resp.NextMarker = keys[len(keys)-1].GetKeyId()
	}
	return resp, nil
}

// proposeForKey resolves ref, authorizes action and proposes the command
// built for the resolved key id.
func (s *Server) proposeForKey(ctx context.Context, action, ref string, build func(keyID string) *fsmpb.Command) (*fsm.Result, error) {
	k, err := s.readKey(ctx, access{action: action}, "KeyId", ref)
	if err != nil {
		return nil, err
	}
	return s.propose(ctx, build(k.GetKeyId()))
}

func (s *Server) UpdateKeyDescription(ctx context.Context, req *kmspb.UpdateKeyDescriptionRequest) (*kmspb.UpdateKeyDescriptionResponse, error) {
	if err := validateDescription(req.GetDescription()); err != nil {
		return nil, err
	}
	_, err := s.proposeForKey(ctx, actionUpdateKeyDescription, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_UpdateKeyDescription{UpdateKeyDescription: &fsmpb.UpdateKeyDescription{KeyId: id, Description: req.GetDescription()}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.UpdateKeyDescriptionResponse{}, nil
}

func (s *Server) setEnabled(ctx context.Context, action, ref string, enabled bool) error {
	_, err := s.proposeForKey(ctx, action, ref, func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_SetKeyEnabled{SetKeyEnabled: &fsmpb.SetKeyEnabled{KeyId: id, Enabled: enabled}}}
	})
	return err
}

func (s *Server) EnableKey(ctx context.Context, req *kmspb.EnableKeyRequest) (*kmspb.EnableKeyResponse, error) {
	if err := s.setEnabled(ctx, actionEnableKey, req.GetKeyId(), true); err != nil {
		return nil, err
	}
	return &kmspb.EnableKeyResponse{}, nil
}

func (s *Server) DisableKey(ctx context.Context, req *kmspb.DisableKeyRequest) (*kmspb.DisableKeyResponse, error) {
	if err := s.setEnabled(ctx, actionDisableKey, req.GetKeyId(), false); err != nil {
		return nil, err
	}
	return &kmspb.DisableKeyResponse{}, nil
}

func (s *Server) ScheduleKeyDeletion(ctx context.Context, req *kmspb.ScheduleKeyDeletionRequest) (*kmspb.ScheduleKeyDeletionResponse, error) {
	days := req.GetPendingWindowInDays()
	if days == 0 {
		days = defaultPendingDays
	}
	if days < minPendingWindow || days > maxPendingWindow {
		return nil, invalid("PendingWindowInDays", "%d is outside %d..%d", days, minPendingWindow, maxPendingWindow)
	}
	res, err := s.proposeForKey(ctx, actionScheduleKeyDeletion, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_ScheduleKeyDeletion{ScheduleKeyDeletion: &fsmpb.ScheduleKeyDeletion{KeyId: id, PendingWindowDays: days}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.ScheduleKeyDeletionResponse{
		KeyId:               keyARN(s.region(), res.Key.GetKeyId()),
		DeletionDate:        unixSeconds(res.Key.GetDeletionTimeUnixNano()),
		KeyState:            keyStateName(res.Key.GetState()),
		PendingWindowInDays: days,
	}, nil
}

func (s *Server) CancelKeyDeletion(ctx context.Context, req *kmspb.CancelKeyDeletionRequest) (*kmspb.CancelKeyDeletionResponse, error) {
	res, err := s.proposeForKey(ctx, actionCancelKeyDeletion, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_CancelKeyDeletion{CancelKeyDeletion: &fsmpb.CancelKeyDeletion{KeyId: id}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.CancelKeyDeletionResponse{KeyId: keyARN(s.region(), res.Key.GetKeyId())}, nil
}

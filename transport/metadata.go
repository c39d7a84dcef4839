package transport

import (
	"encoding/hex"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

// AWS KMS spells key states in CamelCase.
var keyStateNames = map[fsmpb.KeyState]string{
	fsmpb.KeyState_KEY_STATE_ENABLED:          "Enabled",
	fsmpb.KeyState_KEY_STATE_DISABLED:         "Disabled",
	fsmpb.KeyState_KEY_STATE_PENDING_DELETION: "PendingDeletion",
	// A replica not yet imported in its region (ReplicateKey's answer).
	fsmpb.KeyState_KEY_STATE_CREATING: "Creating",
	// A multi-region primary whose deletion waits for its replicas'.
	fsmpb.KeyState_KEY_STATE_PENDING_REPLICA_DELETION: "PendingReplicaDeletion",
}

func keyStateName(s fsmpb.KeyState) string {
	if n, ok := keyStateNames[s]; ok {
		return n
	}
	return "Unavailable"
}

// unixSeconds converts a command time to the AWS CLI's date form.
func unixSeconds(nanos int64) float64 {
	if nanos == 0 {
		return 0
	}
	return float64(nanos) / 1e9
}

func materialID(v *fsmpb.KeyVersion) string { return hex.EncodeToString(v.GetVersionId()) }

func (s *Server) keyMetadata(k *fsmpb.Key) *kmspb.KeyMetadata {
	md := &kmspb.KeyMetadata{
		KeyId:                       k.GetKeyId(),
		Arn:                         keyARN(s.region(), k.GetKeyId()),
		CreationDate:                unixSeconds(k.GetCreationTimeUnixNano()),
		Enabled:                     k.GetState() == fsmpb.KeyState_KEY_STATE_ENABLED,
		Description:                 k.GetDescription(),
		KeyUsage:                    k.GetKeyUsage(),
		KeyState:                    keyStateName(k.GetState()),
		DeletionDate:                unixSeconds(k.GetDeletionTimeUnixNano()),
		Origin:                      k.GetOrigin(),
		KeyManager:                  "CUSTOMER",
		KeySpec:                     k.GetKeySpec(),
		EncryptionAlgorithms:        []string{crypto.EncryptionAlgorithmSymmetricDefault},
		ProtectionLevel:             k.GetProtectionLevel(),
		PendingDeletionWindowInDays: k.GetPendingWindowDays(),
		Region:                      s.region(),
	}
	switch k.GetState() {
	case fsmpb.KeyState_KEY_STATE_PENDING_DELETION, fsmpb.KeyState_KEY_STATE_PENDING_REPLICA_DELETION:
	default:
		md.PendingDeletionWindowInDays = 0
	}
	if v := fsm.CurrentVersion(k); v != nil {
		md.CurrentKeyMaterialId = materialID(v)
	}
	if mr := k.GetMultiRegion(); mr != nil {
		md.MultiRegion = true
		md.MultiRegionConfiguration = s.multiRegionConfiguration(k.GetKeyId(), mr)
	}
	return md
}

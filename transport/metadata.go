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
	if k.GetState() != fsmpb.KeyState_KEY_STATE_PENDING_DELETION {
		md.PendingDeletionWindowInDays = 0
	}
	if v := fsm.CurrentVersion(k); v != nil {
		md.CurrentKeyMaterialId = materialID(v)
	}
	return md
}

package transport

import (
	"context"

	"github.com/trent-kms/trent/fsm/fsmpb"
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
	actionClusterStatus        = "trent:ClusterStatus"
	actionRemoveNode           = "trent:RemoveNode"
)

// principal names the caller, as recorded in commands and audit records.
func principal(ctx context.Context) string { return callerFrom(ctx).Principal }

// authorize decides whether the caller may perform action on key (nil for
// actions not tied to one key). Every handler calls it before doing work;
// key policies and grants plug in here. The audit record names the key
// (noteKey); a decision made by a grant is to name the grant (noteGrant).
func (s *Server) authorize(ctx context.Context, action string, key *fsmpb.Key) error {
	noteKey(ctx, key.GetKeyId())
	_ = action
	return nil
}

package policy

// knownActions lists every action a policy may name: all AWS KMS actions (so
// policies copied from AWS parse, even where Trent does not implement the
// operation yet) and Trent's own cluster actions. An Action element that is
// not "*" must name one of these or be a wildcard pattern that matches at
// least one, so a typo ("kms:Encrpyt") is a parse error instead of a
// statement that silently never applies.
var knownActions = []string{
	"kms:CancelKeyDeletion",
	"kms:ConnectCustomKeyStore",
	"kms:CreateAlias",
	"kms:CreateCustomKeyStore",
	"kms:CreateGrant",
	"kms:CreateKey",
	"kms:Decrypt",
	"kms:DeleteAlias",
	"kms:DeleteCustomKeyStore",
	"kms:DeleteImportedKeyMaterial",
	"kms:DeriveSharedSecret",
	"kms:DescribeCustomKeyStores",
	"kms:DescribeKey",
	"kms:DisableKey",
	"kms:DisableKeyRotation",
	"kms:DisconnectCustomKeyStore",
	"kms:EnableKey",
	"kms:EnableKeyRotation",
	"kms:Encrypt",
	"kms:GenerateDataKey",
	"kms:GenerateDataKeyPair",
	"kms:GenerateDataKeyPairWithoutPlaintext",
	"kms:GenerateDataKeyWithoutPlaintext",
	"kms:GenerateMac",
	"kms:GenerateRandom",
	"kms:GetKeyPolicy",
	"kms:GetKeyRotationStatus",
	"kms:GetParametersForImport",
	"kms:GetPublicKey",
	"kms:ImportKeyMaterial",
	"kms:ListAliases",
	"kms:ListGrants",
	"kms:ListKeyPolicies",
	"kms:ListKeyRotations",
	"kms:ListKeys",
	"kms:ListResourceTags",
	"kms:ListRetirableGrants",
	"kms:PutKeyPolicy",
	"kms:ReEncryptFrom",
	"kms:ReEncryptTo",
	"kms:ReplicateKey",
	"kms:RetireGrant",
	"kms:RevokeGrant",
	"kms:RotateKeyOnDemand",
	"kms:ScheduleKeyDeletion",
	"kms:Sign",
	"kms:SynchronizeMultiRegionKey",
	"kms:TagResource",
	"kms:UntagResource",
	"kms:UpdateAlias",
	"kms:UpdateCustomKeyStore",
	"kms:UpdateKeyDescription",
	"kms:UpdatePrimaryRegion",
	"kms:Verify",
	"kms:VerifyMac",
	"trent:ClusterStatus",
	"trent:RemoveNode",
}

// actionPutKeyPolicy is the action the lockout safety check evaluates.
const actionPutKeyPolicy = "kms:PutKeyPolicy"

// GrantOperations lists the operations a grant may allow, spelled as AWS
// grants spell them: without the "kms:" prefix. It is the AWS list;
// GenerateRandom is not among them because it is not tied to a key.
// Do not modify.
var GrantOperations = []string{
	"Decrypt",
	"Encrypt",
	"GenerateDataKey",
	"GenerateDataKeyWithoutPlaintext",
	"GenerateDataKeyPair",
	"GenerateDataKeyPairWithoutPlaintext",
	"ReEncryptFrom",
	"ReEncryptTo",
	"Sign",
	"Verify",
	"GetPublicKey",
	"GenerateMac",
	"VerifyMac",
	"DeriveSharedSecret",
	"DescribeKey",
	"CreateGrant",
	"RetireGrant",
}

// grantOpClass says how a grant operation relates to encryption-context
// constraints (the AWS rule): operations that take an encryption context are
// checked against the constraints; DescribeKey, CreateGrant and RetireGrant
// may appear in a constrained grant but the constraints do not apply to them;
// the operations of asymmetric and HMAC keys take no context, so a grant with
// constraints may not include them.
type grantOpClass uint8

const (
	opUnknown     grantOpClass = iota
	opWithContext              // constraints are checked
	opManagement               // allowed with constraints, constraints not checked
	opNoContext                // not allowed together with constraints
)

func grantOpClassOf(op string) grantOpClass {
	switch op {
	case "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo":
		return opWithContext
	case "DescribeKey", "CreateGrant", "RetireGrant":
		return opManagement
	case "Sign", "Verify", "GetPublicKey", "GenerateMac", "VerifyMac", "DeriveSharedSecret":
		return opNoContext
	}
	return opUnknown
}

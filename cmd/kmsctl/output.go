package main

import "github.com/trent-kms/trent/transport/kmspb"

// The types below are the JSON shapes the AWS CLI prints for each
// operation: same field names, same order, same omissions (AWS leaves out
// absent fields, hence omitempty where the API has "unset"). Binary fields
// are []byte, which encoding/json writes as base64 as AWS CLI v2 does.
// Dates are Unix seconds with fractions, the AWS CLI's default.
//
// List outputs carry NextMarker and Truncated only when one page was asked
// for (--limit, --marker); see paginate.

type keyMetadataJSON struct {
	KeyID                       string                        `json:"KeyId"`
	Arn                         string                        `json:"Arn"`
	CreationDate                float64                       `json:"CreationDate"`
	Enabled                     bool                          `json:"Enabled"`
	Description                 string                        `json:"Description"`
	KeyUsage                    string                        `json:"KeyUsage"`
	KeyState                    string                        `json:"KeyState"`
	DeletionDate                float64                       `json:"DeletionDate,omitempty"`
	Origin                      string                        `json:"Origin"`
	KeyManager                  string                        `json:"KeyManager"`
	CustomerMasterKeySpec       string                        `json:"CustomerMasterKeySpec"` // deprecated AWS name of KeySpec, kept for old scripts
	KeySpec                     string                        `json:"KeySpec"`
	EncryptionAlgorithms        []string                      `json:"EncryptionAlgorithms,omitempty"`
	MultiRegion                 bool                          `json:"MultiRegion"`
	MultiRegionConfiguration    *multiRegionConfigurationJSON `json:"MultiRegionConfiguration,omitempty"` // multi-region keys only
	PendingDeletionWindowInDays int32                         `json:"PendingDeletionWindowInDays,omitempty"`
	ProtectionLevel             string                        `json:"ProtectionLevel"` // Trent: SOFTWARE or HSM
	CurrentKeyMaterialID        string                        `json:"CurrentKeyMaterialId,omitempty"`
}

func newKeyMetadata(m *kmspb.KeyMetadata) *keyMetadataJSON {
	return &keyMetadataJSON{
		KeyID:                       m.GetKeyId(),
		Arn:                         m.GetArn(),
		CreationDate:                m.GetCreationDate(),
		Enabled:                     m.GetEnabled(),
		Description:                 m.GetDescription(),
		KeyUsage:                    m.GetKeyUsage(),
		KeyState:                    m.GetKeyState(),
		DeletionDate:                m.GetDeletionDate(),
		Origin:                      m.GetOrigin(),
		KeyManager:                  m.GetKeyManager(),
		CustomerMasterKeySpec:       m.GetKeySpec(),
		KeySpec:                     m.GetKeySpec(),
		EncryptionAlgorithms:        m.GetEncryptionAlgorithms(),
		MultiRegion:                 m.GetMultiRegion(),
		MultiRegionConfiguration:    newMultiRegionConfiguration(m.GetMultiRegionConfiguration()),
		PendingDeletionWindowInDays: m.GetPendingDeletionWindowInDays(),
		ProtectionLevel:             m.GetProtectionLevel(),
		CurrentKeyMaterialID:        m.GetCurrentKeyMaterialId(),
	}
}

type keyMetadataOutput struct {
	KeyMetadata *keyMetadataJSON `json:"KeyMetadata"`
}

// keyIDOutput is the answer of cancel-key-deletion and rotate-key-on-demand.
type keyIDOutput struct {
	KeyID string `json:"KeyId"`
}

type keyListEntryJSON struct {
	KeyID  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

type listKeysOutput struct {
	Keys       []keyListEntryJSON `json:"Keys"`
	NextMarker string             `json:"NextMarker,omitempty"`
	Truncated  *bool              `json:"Truncated,omitempty"`
}

type scheduleKeyDeletionOutput struct {
	KeyID               string  `json:"KeyId"`
	DeletionDate        float64 `json:"DeletionDate"`
	KeyState            string  `json:"KeyState"`
	PendingWindowInDays int32   `json:"PendingWindowInDays"`
}

type rotationStatusOutput struct {
	KeyRotationEnabled        bool    `json:"KeyRotationEnabled"`
	KeyID                     string  `json:"KeyId"`
	RotationPeriodInDays      int32   `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate          float64 `json:"NextRotationDate,omitempty"`
	OnDemandRotationStartDate float64 `json:"OnDemandRotationStartDate,omitempty"`
}

type rotationJSON struct {
	KeyID         string  `json:"KeyId"`
	KeyMaterialID string  `json:"KeyMaterialId"`
	RotationDate  float64 `json:"RotationDate"`
	RotationType  string  `json:"RotationType"`
}

type listKeyRotationsOutput struct {
	Rotations  []rotationJSON `json:"Rotations"`
	NextMarker string         `json:"NextMarker,omitempty"`
	Truncated  *bool          `json:"Truncated,omitempty"`
}

type aliasJSON struct {
	AliasName       string  `json:"AliasName"`
	AliasArn        string  `json:"AliasArn"`
	TargetKeyID     string  `json:"TargetKeyId,omitempty"`
	CreationDate    float64 `json:"CreationDate,omitempty"`
	LastUpdatedDate float64 `json:"LastUpdatedDate,omitempty"`
}

type listAliasesOutput struct {
	Aliases    []aliasJSON `json:"Aliases"`
	NextMarker string      `json:"NextMarker,omitempty"`
	Truncated  *bool       `json:"Truncated,omitempty"`
}

type tagJSON struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

type listResourceTagsOutput struct {
	Tags       []tagJSON `json:"Tags"`
	NextMarker string    `json:"NextMarker,omitempty"`
	Truncated  *bool     `json:"Truncated,omitempty"`
}

type encryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyID               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

type decryptOutput struct {
	KeyID               string `json:"KeyId"`
	Plaintext           []byte `json:"Plaintext"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
	KeyMaterialID       string `json:"KeyMaterialId,omitempty"`
}

type reEncryptOutput struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	SourceKeyID                    string `json:"SourceKeyId"`
	KeyID                          string `json:"KeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
}

type generateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext"`
	KeyID          string `json:"KeyId"`
}

type generateDataKeyWithoutPlaintextOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	KeyID          string `json:"KeyId"`
}

type generateRandomOutput struct {
	Plaintext []byte `json:"Plaintext"`
}

type keyPolicyOutput struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName,omitempty"`
}

type listKeyPoliciesOutput struct {
	PolicyNames []string `json:"PolicyNames"`
	NextMarker  string   `json:"NextMarker,omitempty"`
	Truncated   *bool    `json:"Truncated,omitempty"`
}

type createGrantOutput struct {
	GrantToken string `json:"GrantToken"`
	GrantID    string `json:"GrantId"`
}

type grantConstraintsJSON struct {
	EncryptionContextSubset map[string]string `json:"EncryptionContextSubset,omitempty"`
	EncryptionContextEquals map[string]string `json:"EncryptionContextEquals,omitempty"`
}

// grantJSON is AWS's GrantListEntry, except that AWS names the issuer by
// its account (IssuingAccount) and Trent, which has no accounts, by its
// principal.
type grantJSON struct {
	KeyID             string                `json:"KeyId"`
	GrantID           string                `json:"GrantId"`
	Name              string                `json:"Name,omitempty"`
	CreationDate      float64               `json:"CreationDate"`
	GranteePrincipal  string                `json:"GranteePrincipal"`
	RetiringPrincipal string                `json:"RetiringPrincipal,omitempty"`
	IssuingPrincipal  string                `json:"IssuingPrincipal"`
	Operations        []string              `json:"Operations"`
	Constraints       *grantConstraintsJSON `json:"Constraints,omitempty"`
}

func newGrantJSON(g *kmspb.GrantListEntry) grantJSON {
	out := grantJSON{
		KeyID:             g.GetKeyId(),
		GrantID:           g.GetGrantId(),
		Name:              g.GetName(),
		CreationDate:      g.GetCreationDate(),
		GranteePrincipal:  g.GetGranteePrincipal(),
		RetiringPrincipal: g.GetRetiringPrincipal(),
		IssuingPrincipal:  g.GetIssuingPrincipal(),
		Operations:        append([]string{}, g.GetOperations()...),
	}
	if c := g.GetConstraints(); len(c.GetEncryptionContextSubset()) > 0 || len(c.GetEncryptionContextEquals()) > 0 {
		out.Constraints = &grantConstraintsJSON{
			EncryptionContextSubset: c.GetEncryptionContextSubset(),
			EncryptionContextEquals: c.GetEncryptionContextEquals(),
		}
	}
	return out
}

// listGrantsOutput is the answer of list-grants and list-retirable-grants.
type listGrantsOutput struct {
	Grants     []grantJSON `json:"Grants"`
	NextMarker string      `json:"NextMarker,omitempty"`
	Truncated  *bool       `json:"Truncated,omitempty"`
}

// Cluster output has no AWS counterpart; it uses the same naming style so
// --query reads alike (NodeId, Nodes[].GrpcAddress).

type nodeStatusJSON struct {
	NodeID      string `json:"NodeId"`
	RaftAddress string `json:"RaftAddress"`
	GrpcAddress string `json:"GrpcAddress"`
	Suffrage    string `json:"Suffrage"`
	Leader      bool   `json:"Leader"`
}

type clusterStatusOutput struct {
	Region       string           `json:"Region"`
	NodeID       string           `json:"NodeId"`
	LeaderID     string           `json:"LeaderId"`
	AppliedIndex uint64           `json:"AppliedIndex"`
	CommitIndex  uint64           `json:"CommitIndex"`
	HSM          string           `json:"HSM"`
	Nodes        []nodeStatusJSON `json:"Nodes"`
}

// managementEventJSON is one command of the replicated state. Fields that
// do not apply to the command are left out, as AWS leaves out absent
// fields; Error is left out when the command was applied.
type managementEventJSON struct {
	Index     uint64  `json:"Index"`
	Time      float64 `json:"Time"`
	Principal string  `json:"Principal"`
	Operation string  `json:"Operation"`
	KeyID     string  `json:"KeyId,omitempty"`
	AliasName string  `json:"AliasName,omitempty"`
	GrantID   string  `json:"GrantId,omitempty"`
	Error     string  `json:"Error,omitempty"`
}

type managementEventsOutput struct {
	Events    []managementEventJSON `json:"Events"`
	Truncated *bool                 `json:"Truncated,omitempty"`
}

package main

import "github.com/trent-kms/trent/transport/kmspb"

var multiRegionCommands = []*command{
	{
		name: "replicate-key", op: "ReplicateKey",
		summary: "Replicate a multi-Region primary key to another region (run in the primary region).",
		flags: []flagSpec{keyIDFlag,
			{name: "replica-region", kind: kindString, required: true, metavar: "REGION", usage: "region to create the replica in"},
			policyFlag(false),
			bypassFlag,
			{name: "description", kind: kindString, usage: "the replica's description (not shared with the primary)"},
			{name: "tags", kind: kindTags, metavar: "TagKey=KEY,TagValue=VALUE", usage: "the replica's tags, one argument per tag"},
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.ReplicateKey(r.ctx, &kmspb.ReplicateKeyRequest{
				KeyId:                          r.flags.str("key-id"),
				ReplicaRegion:                  r.flags.str("replica-region"),
				Policy:                         r.flags.str("policy"),
				BypassPolicyLockoutSafetyCheck: r.flags.bool("bypass-policy-lockout-safety-check"),
				Description:                    r.flags.str("description"),
				Tags:                           r.flags.tags("tags"),
			})
			if err != nil {
				return nil, err
			}
			out := replicateKeyOutput{
				ReplicaKeyMetadata: newKeyMetadata(resp.GetReplicaKeyMetadata()),
				ReplicaPolicy:      resp.GetReplicaPolicy(),
				ReplicaTags:        []tagJSON{},
			}
			for _, t := range resp.GetReplicaTags() {
				out.ReplicaTags = append(out.ReplicaTags, tagJSON{TagKey: t.GetTagKey(), TagValue: t.GetTagValue()})
			}
			return out, nil
		},
	},
	{
		name: "update-primary-region", op: "UpdatePrimaryRegion",
		summary: "Make another region the primary of a multi-Region key.",
		flags: []flagSpec{keyIDFlag,
			{name: "primary-region", kind: kindString, required: true, metavar: "REGION", usage: "the region whose replica becomes the primary"},
			{name: "force", kind: kindBool, usage: "promote this region while the primary region is unreachable (send to the region named by --primary-region)"},
		},
		run: func(r *request) (any, error) {
			_, err := r.kms.UpdatePrimaryRegion(r.ctx, &kmspb.UpdatePrimaryRegionRequest{
				KeyId:         r.flags.str("key-id"),
				PrimaryRegion: r.flags.str("primary-region"),
				Force:         r.flags.bool("force"),
			})
			return nil, err
		},
	},
}

// replicateKeyOutput is the AWS CLI's answer to replicate-key.
type replicateKeyOutput struct {
	ReplicaKeyMetadata *keyMetadataJSON `json:"ReplicaKeyMetadata"`
	ReplicaPolicy      string           `json:"ReplicaPolicy"`
	ReplicaTags        []tagJSON        `json:"ReplicaTags"`
}

// multiRegionConfigurationJSON is AWS's MultiRegionConfiguration plus
// Trent's replication fields (Epoch, SharedChange at the primary,
// AppliedChange and AppliedTime at a replica).
type multiRegionConfigurationJSON struct {
	MultiRegionKeyType string               `json:"MultiRegionKeyType"`
	PrimaryKey         multiRegionKeyJSON   `json:"PrimaryKey"`
	ReplicaKeys        []multiRegionKeyJSON `json:"ReplicaKeys"`
	Epoch              uint64               `json:"Epoch"`
	SharedChange       uint64               `json:"SharedChange,omitempty"`
	AppliedChange      uint64               `json:"AppliedChange,omitempty"`
	AppliedTime        float64              `json:"AppliedTime,omitempty"`
}

// multiRegionKeyJSON is AWS's MultiRegionKey (Arn, Region); replicas add
// their status and, in the primary region, their progress.
type multiRegionKeyJSON struct {
	Arn                  string  `json:"Arn"`
	Region               string  `json:"Region"`
	Status               string  `json:"Status,omitempty"`
	ReplicationLagMillis *int64  `json:"ReplicationLagMillis,omitempty"`
	AckedChange          *uint64 `json:"AckedChange,omitempty"`
	LastError            string  `json:"LastError,omitempty"`
}

func newMultiRegionConfiguration(c *kmspb.MultiRegionConfiguration) *multiRegionConfigurationJSON {
	if c == nil {
		return nil
	}
	out := &multiRegionConfigurationJSON{
		MultiRegionKeyType: c.GetMultiRegionKeyType(),
		PrimaryKey:         multiRegionKeyJSON{Arn: c.GetPrimaryKey().GetArn(), Region: c.GetPrimaryKey().GetRegion()},
		ReplicaKeys:        []multiRegionKeyJSON{},
		Epoch:              c.GetEpoch(),
		SharedChange:       c.GetSharedChange(),
		AppliedChange:      c.GetAppliedChange(),
		AppliedTime:        c.GetAppliedTime(),
	}
	for _, r := range c.GetReplicaKeys() {
		out.ReplicaKeys = append(out.ReplicaKeys, multiRegionKeyJSON{
			Arn:                  r.GetArn(),
			Region:               r.GetRegion(),
			Status:               r.GetStatus(),
			ReplicationLagMillis: r.ReplicationLagMillis,
			AckedChange:          r.AckedChange,
			LastError:            r.GetLastError(),
		})
	}
	return out
}

package main

import "github.com/trent-kms/trent/transport/kmspb"

var keyCommands = []*command{
	{
		name: "create-key", op: "CreateKey",
		summary: "Create a key.",
		flags: []flagSpec{
			{name: "description", kind: kindString, usage: "free text shown by describe-key"},
			{name: "key-usage", kind: kindString, usage: "ENCRYPT_DECRYPT (default)"},
			{name: "key-spec", kind: kindString, usage: "SYMMETRIC_DEFAULT (default)"},
			{name: "protection-level", kind: kindString, metavar: "SOFTWARE|HSM", usage: "where the key material lives (default SOFTWARE)"},
			{name: "tags", kind: kindTags, metavar: "TagKey=KEY,TagValue=VALUE", usage: "tags to set, one argument per tag"},
			{name: "multi-region", kind: kindBool, usage: "create a multi-Region primary key"},
			policyFlag(false),
			bypassFlag,
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.CreateKey(r.ctx, &kmspb.CreateKeyRequest{
				Description:                    r.flags.str("description"),
				KeyUsage:                       r.flags.str("key-usage"),
				KeySpec:                        r.flags.str("key-spec"),
				ProtectionLevel:                r.flags.str("protection-level"),
				Tags:                           r.flags.tags("tags"),
				MultiRegion:                    r.flags.bool("multi-region"),
				Policy:                         r.flags.str("policy"),
				BypassPolicyLockoutSafetyCheck: r.flags.bool("bypass-policy-lockout-safety-check"),
			})
			if err != nil {
				return nil, err
			}
			return keyMetadataOutput{newKeyMetadata(resp.GetKeyMetadata())}, nil
		},
	},
	{
		name: "describe-key", op: "DescribeKey",
		summary: "Show a key's metadata.",
		flags:   []flagSpec{keyIDFlag, grantTokensFlag},
		run: func(r *request) (any, error) {
			resp, err := r.kms.DescribeKey(r.ctx, &kmspb.DescribeKeyRequest{
				KeyId:       r.flags.str("key-id"),
				GrantTokens: r.flags.list("grant-tokens"),
			})
			if err != nil {
				return nil, err
			}
			return keyMetadataOutput{newKeyMetadata(resp.GetKeyMetadata())}, nil
		},
	},
	{
		name: "list-keys", op: "ListKeys",
		summary: "List the keys of the region.",
		flags:   []flagSpec{limitFlag, markerFlag},
		run: func(r *request) (any, error) {
			out := listKeysOutput{Keys: []keyListEntryJSON{}}
			var err error
			out.NextMarker, out.Truncated, err = paginate(r, func(marker string) (string, bool, error) {
				resp, err := r.kms.ListKeys(r.ctx, &kmspb.ListKeysRequest{Limit: r.flags.int32("limit"), Marker: marker})
				for _, k := range resp.GetKeys() {
					out.Keys = append(out.Keys, keyListEntryJSON{KeyID: k.GetKeyId(), KeyArn: k.GetKeyArn()})
				}
				return resp.GetNextMarker(), resp.GetTruncated(), err
			})
			return out, err
		},
	},
	{
		name: "update-key-description", op: "UpdateKeyDescription",
		summary: "Replace a key's description.",
		flags: []flagSpec{keyIDFlag,
			{name: "description", kind: kindString, required: true, usage: "the new description"},
		},
		run: func(r *request) (any, error) {
			_, err := r.kms.UpdateKeyDescription(r.ctx, &kmspb.UpdateKeyDescriptionRequest{
				KeyId:       r.flags.str("key-id"),
				Description: r.flags.str("description"),
			})
			return nil, err
		},
	},
	{
		name: "enable-key", op: "EnableKey",
		summary: "Allow a disabled key to be used again.",
		flags:   []flagSpec{keyIDFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.EnableKey(r.ctx, &kmspb.EnableKeyRequest{KeyId: r.flags.str("key-id")})
			return nil, err
		},
	},
	{
		name: "disable-key", op: "DisableKey",
		summary: "Stop a key from being used until it is enabled again.",
		flags:   []flagSpec{keyIDFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.DisableKey(r.ctx, &kmspb.DisableKeyRequest{KeyId: r.flags.str("key-id")})
			return nil, err
		},
	},
	{
		name: "schedule-key-deletion", op: "ScheduleKeyDeletion",
		summary: "Delete a key after a waiting period.",
		flags: []flagSpec{keyIDFlag,
			{name: "pending-window-in-days", kind: kindInt, metavar: "DAYS", usage: "waiting period, 7 to 30 days (default 30)"},
		},
		run: func(r *request) (any, error) {
			resp, err := r.kms.ScheduleKeyDeletion(r.ctx, &kmspb.ScheduleKeyDeletionRequest{
				KeyId:               r.flags.str("key-id"),
				PendingWindowInDays: r.flags.int32("pending-window-in-days"),
			})
			if err != nil {
				return nil, err
			}
			return scheduleKeyDeletionOutput{
				KeyID:               resp.GetKeyId(),
				DeletionDate:        resp.GetDeletionDate(),
				KeyState:            resp.GetKeyState(),
				PendingWindowInDays: resp.GetPendingWindowInDays(),
			}, nil
		},
	},
	{
		name: "cancel-key-deletion", op: "CancelKeyDeletion",
		summary: "Cancel a scheduled deletion; the key is left disabled.",
		flags:   []flagSpec{keyIDFlag},
		run: func(r *request) (any, error) {
			resp, err := r.kms.CancelKeyDeletion(r.ctx, &kmspb.CancelKeyDeletionRequest{KeyId: r.flags.str("key-id")})
			if err != nil {
				return nil, err
			}
			return keyIDOutput{resp.GetKeyId()}, nil
		},
	},
}

package main

import "github.com/trent-kms/trent/transport/kmspb"

var (
	policyNameFlag = flagSpec{name: "policy-name", kind: kindString, metavar: "NAME", usage: `"default", the only key policy name (may be left out)`}
	bypassFlag     = flagSpec{name: "bypass-policy-lockout-safety-check", kind: kindBool, usage: "allow a policy that would not let you change it again"}
)

func policyFlag(required bool) flagSpec {
	return flagSpec{name: "policy", kind: kindText, required: required, metavar: "POLICY",
		usage: "key policy JSON, or file://PATH to read it from a file; stored byte for byte"}
}

var policyCommands = []*command{
	{
		name: "put-key-policy", op: "PutKeyPolicy",
		summary: "Replace a key's policy.",
		flags:   []flagSpec{keyIDFlag, policyFlag(true), policyNameFlag, bypassFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.PutKeyPolicy(r.ctx, &kmspb.PutKeyPolicyRequest{
				KeyId:                          r.flags.str("key-id"),
				Policy:                         r.flags.str("policy"),
				PolicyName:                     r.flags.str("policy-name"),
				BypassPolicyLockoutSafetyCheck: r.flags.bool("bypass-policy-lockout-safety-check"),
			})
			return nil, err
		},
	},
	{
		name: "get-key-policy", op: "GetKeyPolicy",
		summary: "Show a key's policy (--query Policy --output text prints it as stored).",
		flags:   []flagSpec{keyIDFlag, policyNameFlag},
		run: func(r *request) (any, error) {
			resp, err := r.kms.GetKeyPolicy(r.ctx, &kmspb.GetKeyPolicyRequest{
				KeyId:      r.flags.str("key-id"),
				PolicyName: r.flags.str("policy-name"),
			})
			if err != nil {
				return nil, err
			}
			return keyPolicyOutput{Policy: resp.GetPolicy(), PolicyName: resp.GetPolicyName()}, nil
		},
	},
	{
		name: "list-key-policies", op: "ListKeyPolicies",
		summary: "List the names of a key's policies (always \"default\").",
		flags:   []flagSpec{keyIDFlag, limitFlag, markerFlag},
		run: func(r *request) (any, error) {
			out := listKeyPoliciesOutput{PolicyNames: []string{}}
			var err error
			out.NextMarker, out.Truncated, err = paginate(r, func(marker string) (string, bool, error) {
				resp, err := r.kms.ListKeyPolicies(r.ctx, &kmspb.ListKeyPoliciesRequest{
					KeyId:  r.flags.str("key-id"),
					Limit:  r.flags.int32("limit"),
					Marker: marker,
				})
				out.PolicyNames = append(out.PolicyNames, resp.GetPolicyNames()...)
				return resp.GetNextMarker(), resp.GetTruncated(), err
			})
			return out, err
		},
	},
}

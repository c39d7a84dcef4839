package main

import "github.com/trent-kms/trent/transport/kmspb"

var (
	aliasNameFlag   = flagSpec{name: "alias-name", kind: kindString, required: true, metavar: "alias/NAME", usage: "the alias, starting with alias/"}
	targetKeyIDFlag = flagSpec{name: "target-key-id", kind: kindString, required: true, metavar: "KEY_ID", usage: "key id or key ARN the alias names"}
)

var aliasCommands = []*command{
	{
		name: "create-alias", op: "CreateAlias",
		summary: "Give a key a friendly name.",
		flags:   []flagSpec{aliasNameFlag, targetKeyIDFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.CreateAlias(r.ctx, &kmspb.CreateAliasRequest{
				AliasName:   r.flags.str("alias-name"),
				TargetKeyId: r.flags.str("target-key-id"),
			})
			return nil, err
		},
	},
	{
		name: "update-alias", op: "UpdateAlias",
		summary: "Point an alias at another key.",
		flags:   []flagSpec{aliasNameFlag, targetKeyIDFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.UpdateAlias(r.ctx, &kmspb.UpdateAliasRequest{
				AliasName:   r.flags.str("alias-name"),
				TargetKeyId: r.flags.str("target-key-id"),
			})
			return nil, err
		},
	},
	{
		name: "delete-alias", op: "DeleteAlias",
		summary: "Delete an alias; its key is unaffected.",
		flags:   []flagSpec{aliasNameFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.DeleteAlias(r.ctx, &kmspb.DeleteAliasRequest{AliasName: r.flags.str("alias-name")})
			return nil, err
		},
	},
	{
		name: "list-aliases", op: "ListAliases",
		summary: "List aliases, of one key or of all.",
		flags: []flagSpec{
			{name: "key-id", kind: kindString, usage: "list only the aliases of this key"},
			limitFlag, markerFlag,
		},
		run: func(r *request) (any, error) {
			out := listAliasesOutput{Aliases: []aliasJSON{}}
			var err error
			out.NextMarker, out.Truncated, err = paginate(r, func(marker string) (string, bool, error) {
				resp, err := r.kms.ListAliases(r.ctx, &kmspb.ListAliasesRequest{
					KeyId:  r.flags.str("key-id"),
					Limit:  r.flags.int32("limit"),
					Marker: marker,
				})
				for _, a := range resp.GetAliases() {
					out.Aliases = append(out.Aliases, aliasJSON{
						AliasName:       a.GetAliasName(),
						AliasArn:        a.GetAliasArn(),
						TargetKeyID:     a.GetTargetKeyId(),
						CreationDate:    a.GetCreationDate(),
						LastUpdatedDate: a.GetLastUpdatedDate(),
					})
				}
				return resp.GetNextMarker(), resp.GetTruncated(), err
			})
			return out, err
		},
	},
}

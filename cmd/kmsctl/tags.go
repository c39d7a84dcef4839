package main

import "github.com/trent-kms/trent/transport/kmspb"

var tagCommands = []*command{
	{
		name: "tag-resource", op: "TagResource",
		summary: "Add or overwrite tags on a key.",
		flags: []flagSpec{keyIDFlag,
			{name: "tags", kind: kindTags, required: true, metavar: "TagKey=KEY,TagValue=VALUE", usage: "one argument per tag, or a JSON list"},
		},
		run: func(r *request) (any, error) {
			_, err := r.kms.TagResource(r.ctx, &kmspb.TagResourceRequest{
				KeyId: r.flags.str("key-id"),
				Tags:  r.flags.tags("tags"),
			})
			return nil, err
		},
	},
	{
		name: "untag-resource", op: "UntagResource",
		summary: "Remove tags from a key.",
		flags: []flagSpec{keyIDFlag,
			{name: "tag-keys", kind: kindList, required: true, metavar: "KEY", usage: "keys of the tags to remove, one argument each"},
		},
		run: func(r *request) (any, error) {
			_, err := r.kms.UntagResource(r.ctx, &kmspb.UntagResourceRequest{
				KeyId:   r.flags.str("key-id"),
				TagKeys: r.flags.list("tag-keys"),
			})
			return nil, err
		},
	},
	{
		name: "list-resource-tags", op: "ListResourceTags",
		summary: "List the tags of a key.",
		flags:   []flagSpec{keyIDFlag, limitFlag, markerFlag},
		run: func(r *request) (any, error) {
			out := listResourceTagsOutput{Tags: []tagJSON{}}
			var err error
			out.NextMarker, out.Truncated, err = paginate(r, func(marker string) (string, bool, error) {
				resp, err := r.kms.ListResourceTags(r.ctx, &kmspb.ListResourceTagsRequest{
					KeyId:  r.flags.str("key-id"),
					Limit:  r.flags.int32("limit"),
					Marker: marker,
				})
				for _, t := range resp.GetTags() {
					out.Tags = append(out.Tags, tagJSON{TagKey: t.GetTagKey(), TagValue: t.GetTagValue()})
				}
				return resp.GetNextMarker(), resp.GetTruncated(), err
			})
			return out, err
		},
	},
}

package main

import (
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

func TestTagAndUntagResource(t *testing.T) {
	ts := startServer(t)
	tagsFile := writeTempFile(t, "tags.json", []byte(`[{"TagKey":"note","TagValue":"a, b"}]`))

	ts.run("tag-resource", "--key-id", "k",
		"--tags", "TagKey=team,TagValue=payroll", "TagValue=prod,TagKey=env", "file://"+tagsFile).mustSucceed(t)
	// Multi-valued flags end at the next --flag, wherever it is.
	ts.run("untag-resource", "--tag-keys", "team", "env", "--key-id", "k").mustSucceed(t)

	wantRequests(t, &ts.kms.fake,
		&kmspb.TagResourceRequest{KeyId: "k", Tags: []*kmspb.Tag{
			{TagKey: "team", TagValue: "payroll"}, {TagKey: "env", TagValue: "prod"}, {TagKey: "note", TagValue: "a, b"},
		}},
		&kmspb.UntagResourceRequest{KeyId: "k", TagKeys: []string{"team", "env"}},
	)
}

func TestTagResourceRejectsMalformedTag(t *testing.T) {
	ts := startServer(t)

	r := ts.run("tag-resource", "--key-id", "k", "--tags", "team=payroll")

	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantOutput(t, r.stderr, "kmsctl: error: --tags: \"team=payroll\": want TagKey=KEY,TagValue=VALUE (write a JSON list for values with commas)\nSee 'kmsctl tag-resource --help'.\n")
	wantRequests(t, &ts.kms.fake)
}

func TestListResourceTags(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListResourceTags", &kmspb.ListResourceTagsResponse{Tags: []*kmspb.Tag{
		{TagKey: "env", TagValue: "prod"}, {TagKey: "team", TagValue: "payroll"},
	}})

	r := ts.run("list-resource-tags", "--key-id", "k").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "Tags": [
        {
            "TagKey": "env",
            "TagValue": "prod"
        },
        {
            "TagKey": "team",
            "TagValue": "payroll"
        }
    ]
}
`)
	// AWS text format: one line per list element, columns in key order,
	// prefixed by the list's name.
	r = ts.run("list-resource-tags", "--key-id", "k", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "TAGS\tenv\tprod\nTAGS\tteam\tpayroll\n")
}

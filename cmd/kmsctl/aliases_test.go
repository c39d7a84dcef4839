package main

import (
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

func TestAliasCommandsMapFlags(t *testing.T) {
	ts := startServer(t)

	for _, args := range [][]string{
		{"create-alias", "--alias-name", "alias/app", "--target-key-id", "k1"},
		{"update-alias", "--alias-name=alias/app", "--target-key-id=k2"},
		{"delete-alias", "--alias-name", "alias/app"},
	} {
		wantOutput(t, ts.run(args...).mustSucceed(t).stdout, "")
	}

	wantRequests(t, &ts.kms.fake,
		&kmspb.CreateAliasRequest{AliasName: "alias/app", TargetKeyId: "k1"},
		&kmspb.UpdateAliasRequest{AliasName: "alias/app", TargetKeyId: "k2"},
		&kmspb.DeleteAliasRequest{AliasName: "alias/app"},
	)
}

func TestListAliases(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListAliases", &kmspb.ListAliasesResponse{Aliases: []*kmspb.AliasListEntry{
		{AliasName: "alias/app", AliasArn: "arn:alias/app", TargetKeyId: "k1", CreationDate: 1700000000, LastUpdatedDate: 1700000500.5},
		{AliasName: "alias/db", AliasArn: "arn:alias/db", TargetKeyId: "k1", CreationDate: 1700000001, LastUpdatedDate: 1700000001},
	}})

	r := ts.run("list-aliases", "--key-id", "k1").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "Aliases": [
        {
            "AliasName": "alias/app",
            "AliasArn": "arn:alias/app",
            "TargetKeyId": "k1",
            "CreationDate": 1700000000,
            "LastUpdatedDate": 1700000500.5
        },
        {
            "AliasName": "alias/db",
            "AliasArn": "arn:alias/db",
            "TargetKeyId": "k1",
            "CreationDate": 1700000001,
            "LastUpdatedDate": 1700000001
        }
    ]
}
`)
	r = ts.run("list-aliases", "--query", "Aliases[].AliasName", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "alias/app\talias/db\n")

	wantRequests(t, &ts.kms.fake, &kmspb.ListAliasesRequest{KeyId: "k1"}, &kmspb.ListAliasesRequest{})
}

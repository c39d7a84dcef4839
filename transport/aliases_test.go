package transport_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func TestAliasesNameKeysEverywhere(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	ctx := ctxT(t)
	a, _ := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	b, _ := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	aID, bID := a.GetKeyMetadata().GetKeyId(), b.GetKeyMetadata().GetKeyId()

	if _, err := c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/app/orders", TargetKeyId: aID}); err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: "alias/app/orders", Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if enc.GetKeyId() != a.GetKeyMetadata().GetArn() {
		t.Fatalf("encrypt via alias used %s, want %s", enc.GetKeyId(), a.GetKeyMetadata().GetArn())
	}
	if _, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: "arn:trent:kms:test-1::alias/app/orders"}); err != nil {
		t.Fatalf("alias ARN: %v", err)
	}
	if _, err := c.UpdateAlias(ctx, &kmspb.UpdateAliasRequest{AliasName: "alias/app/orders", TargetKeyId: bID}); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, c, "alias/app/orders"); got.GetKeyId() != bID {
		t.Fatalf("alias points at %s after update, want %s", got.GetKeyId(), bID)
	}
	list, err := c.ListAliases(ctx, &kmspb.ListAliasesRequest{KeyId: bID})
	if err != nil || len(list.GetAliases()) != 1 || list.GetAliases()[0].GetAliasName() != "alias/app/orders" {
		t.Fatalf("ListAliases(b) = %v, %v", list, err)
	}
	if list, _ := c.ListAliases(ctx, &kmspb.ListAliasesRequest{KeyId: aID}); len(list.GetAliases()) != 0 {
		t.Fatalf("ListAliases(a) = %v, want none", list)
	}
	if _, err := c.DeleteAlias(ctx, &kmspb.DeleteAliasRequest{AliasName: "alias/app/orders"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteAlias(ctx, &kmspb.DeleteAliasRequest{AliasName: "alias/app/orders"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("deleting a deleted alias: %v, want NotFound", err)
	}
}

func TestTagsUpsertListAndRemove(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	ctx := ctxT(t)
	k, _ := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	id := k.GetKeyMetadata().GetKeyId()
	if _, err := c.TagResource(ctx, &kmspb.TagResourceRequest{KeyId: id, Tags: []*kmspb.Tag{{TagKey: "b", TagValue: "1"}, {TagKey: "a", TagValue: "2"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &kmspb.TagResourceRequest{KeyId: id, Tags: []*kmspb.Tag{{TagKey: "b", TagValue: "3"}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.ListResourceTags(ctx, &kmspb.ListResourceTagsRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	got := tags.GetTags()
	if len(got) != 2 || got[0].GetTagKey() != "a" || got[1].GetTagKey() != "b" || got[1].GetTagValue() != "3" {
		t.Fatalf("tags = %v, want a=2, b=3 sorted", got)
	}
	if _, err := c.UntagResource(ctx, &kmspb.UntagResourceRequest{KeyId: id, TagKeys: []string{"a", "absent"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = c.ListResourceTags(ctx, &kmspb.ListResourceTagsRequest{KeyId: id})
	if len(tags.GetTags()) != 1 {
		t.Fatalf("after untag: %v", tags.GetTags())
	}
}

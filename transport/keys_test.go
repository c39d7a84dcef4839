package transport_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func TestKeyLifecycleAsAWSUsersExpect(t *testing.T) {
	clock := &nodetest.Clock{}
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Clock: clock})
	c := r.KMS(0)
	ctx := ctxT(t)

	created, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{Description: "orders", Tags: []*kmspb.Tag{{TagKey: "team", TagValue: "payments"}}})
	if err != nil {
		t.Fatal(err)
	}
	md := created.GetKeyMetadata()
	if md.GetKeyState() != "Enabled" || !md.GetEnabled() || md.GetKeySpec() != "SYMMETRIC_DEFAULT" || md.GetKeyUsage() != "ENCRYPT_DECRYPT" || md.GetProtectionLevel() != "SOFTWARE" {
		t.Fatalf("new key metadata = %v", md)
	}
	id := md.GetKeyId()
	if md.GetArn() != "arn:trent:kms:test-1::key/"+id {
		t.Fatalf("Arn = %q", md.GetArn())
	}
	for _, ref := range []string{id, md.GetArn()} {
		if _, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: ref}); err != nil {
			t.Fatalf("DescribeKey(%s): %v", ref, err)
		}
	}
	if _, err := c.UpdateKeyDescription(ctx, &kmspb.UpdateKeyDescriptionRequest{KeyId: id, Description: "orders v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableKey(ctx, &kmspb.DisableKeyRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, c, id); got.GetKeyState() != "Disabled" || got.GetDescription() != "orders v2" {
		t.Fatalf("after disable: %v", got)
	}
	if _, err := c.EnableKey(ctx, &kmspb.EnableKeyRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}

	sched, err := c.ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	if sched.GetPendingWindowInDays() != 30 || sched.GetKeyState() != "PendingDeletion" {
		t.Fatalf("ScheduleKeyDeletion = %v, want the default 30 days", sched)
	}
	if _, err := c.CancelKeyDeletion(ctx, &kmspb.CancelKeyDeletionRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, c, id); got.GetKeyState() != "Disabled" {
		t.Fatalf("cancelled deletion leaves the key %s, want Disabled", got.GetKeyState())
	}

	if _, err := c.ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: id, PendingWindowInDays: 7}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * 24 * time.Hour)
	if got := describe(t, c, id); got.GetKeyState() != "PendingDeletion" {
		t.Fatalf("deleted before its waiting period ended: %v", got.GetKeyState())
	}
	clock.Advance(24*time.Hour + time.Minute)
	nodetest.WaitFor(t, 10*time.Second, "the leader to delete the key after its waiting period", func() bool {
		_, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: id})
		return status.Code(err) == codes.NotFound
	})
}

func describe(t *testing.T, c kmspb.KMSClient, id string) *kmspb.KeyMetadata {
	t.Helper()
	resp, err := c.DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetKeyMetadata()
}

func TestListKeysPages(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		resp, err := c.CreateKey(ctxT(t), &kmspb.CreateKeyRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want[resp.GetKeyMetadata().GetKeyId()] = true
	}
	seen := map[string]bool{}
	marker := ""
	for pages := 0; ; pages++ {
		resp, err := c.ListKeys(ctxT(t), &kmspb.ListKeysRequest{Limit: 3, Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range resp.GetKeys() {
			if seen[k.GetKeyId()] {
				t.Fatalf("key %s listed twice", k.GetKeyId())
			}
			seen[k.GetKeyId()] = true
		}
		if !resp.GetTruncated() {
			break
		}
		marker = resp.GetNextMarker()
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("listed %d keys, want %d", len(seen), len(want))
	}
}

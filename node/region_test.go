package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createKey(t *testing.T, c kmspb.KMSClient, protection string) string {
	t.Helper()
	resp, err := c.CreateKey(ctxT(t), &kmspb.CreateKeyRequest{Description: "test", ProtectionLevel: protection})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return resp.GetKeyMetadata().GetKeyId()
}

func encrypt(t *testing.T, c kmspb.KMSClient, keyID, plaintext string) []byte {
	t.Helper()
	resp, err := c.Encrypt(ctxT(t), &kmspb.EncryptRequest{KeyId: keyID, Plaintext: []byte(plaintext), EncryptionContext: map[string]string{"app": "test"}})
	if err != nil {
		t.Fatalf("Encrypt with %s: %v", keyID, err)
	}
	return resp.GetCiphertextBlob()
}

func decrypt(t *testing.T, c kmspb.KMSClient, blob []byte) string {
	t.Helper()
	resp, err := c.Decrypt(ctxT(t), &kmspb.DecryptRequest{CiphertextBlob: blob, EncryptionContext: map[string]string{"app": "test"}})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	return string(resp.GetPlaintext())
}

func TestCreateOnFollowerEncryptOnAnotherDecryptOnLeader(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	leader, followers := r.Leader(), r.Followers()
	for _, protection := range []string{"SOFTWARE", "HSM"} {
		t.Run(protection, func(t *testing.T) {
			keyID := createKey(t, r.KMS(followers[0]), protection)
			blob := encrypt(t, r.KMS(followers[1]), keyID, "forwarded and served locally")
			if got := decrypt(t, r.KMS(leader), blob); got != "forwarded and served locally" {
				t.Fatalf("decrypt on leader = %q", got)
			}
		})
	}
}

func TestDisableKeyIsRefusedOnEveryNodeAtOnce(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	followers := r.Followers()
	for round := 0; round < 10; round++ {
		keyID := createKey(t, r.KMS(0), "")
		for _, i := range r.Running() {
			encrypt(t, r.KMS(i), keyID, "warm the node's view of the key")
		}
		// Disable through a follower (forwarded); once it returns, no node may serve the key.
		if _, err := r.KMS(followers[round%2]).DisableKey(ctxT(t), &kmspb.DisableKeyRequest{KeyId: keyID}); err != nil {
			t.Fatalf("DisableKey: %v", err)
		}
		for _, i := range r.Running() {
			_, err := r.KMS(i).Encrypt(ctxT(t), &kmspb.EncryptRequest{KeyId: keyID, Plaintext: []byte("x")})
			if status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("round %d: Encrypt on node%d right after DisableKey returned: err = %v, want FailedPrecondition (DisabledException)", round, i, err)
			}
		}
	}
}

func TestLeaderFailoverLosesNoAcknowledgedWrite(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	old := r.Leader()
	type written struct {
		keyID string
		blob  []byte
	}
	var acked []written
	for i := 0; i < 5; i++ {
		id := createKey(t, r.KMS((old+1)%3), "")
		acked = append(acked, written{id, encrypt(t, r.KMS(old), id, fmt.Sprint("before ", i))})
	}
	r.Stop(old)
	newLeader := r.Leader()
	if newLeader == old {
		t.Fatalf("stopped node%d still reported as leader", old)
	}
	for _, i := range r.Running() {
		id := createKey(t, r.KMS(i), "")
		acked = append(acked, written{id, encrypt(t, r.KMS(i), id, "after")})
	}
	for _, i := range r.Running() {
		for _, w := range acked {
			if _, err := r.KMS(i).DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: w.keyID}); err != nil {
				t.Fatalf("node%d lost acknowledged key %s: %v", i, w.keyID, err)
			}
			decrypt(t, r.KMS(i), w.blob)
		}
	}
	r.Restart(old)
	nodetest.WaitFor(t, 10*time.Second, "the old leader to catch up", func() bool {
		_, err := r.KMS(old).DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: acked[len(acked)-1].keyID})
		return err == nil
	})
}

func TestWholeRegionRestartKeepsEveryCiphertextDecryptable(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	c := r.KMS(0)
	var blobs [][]byte
	for _, protection := range []string{"SOFTWARE", "HSM"} {
		id := createKey(t, c, protection)
		blobs = append(blobs, encrypt(t, c, id, "v1 "+protection))
		if _, err := c.RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
			t.Fatalf("RotateKeyOnDemand: %v", err)
		}
		blobs = append(blobs, encrypt(t, c, id, "v2 "+protection))
	}
	for i := 0; i < r.Len(); i++ {
		r.Stop(i)
	}
	r.RestartAll()
	want := []string{"v1 SOFTWARE", "v2 SOFTWARE", "v1 HSM", "v2 HSM"}
	for _, i := range r.Running() {
		for j, blob := range blobs {
			if got := decrypt(t, r.KMS(i), blob); got != want[j] {
				t.Fatalf("node%d: decrypt = %q, want %q", i, got, want[j])
			}
		}
	}
}

func TestNodeDownPastASnapshotCatchesUp(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{SnapshotThreshold: 16, TrailingLogs: 4})
	leader := r.Leader()
	lagging := r.Followers()[0]
	r.Stop(lagging)
	var last string
	for i := 0; i < 40; i++ {
		last = createKey(t, r.KMS(leader), "")
	}
	if err := r.Node(leader).Raft().TakeSnapshot(); err != nil {
		t.Fatalf("TakeSnapshot: %v", err)
	}
	r.Restart(lagging)
	if _, err := r.KMS(lagging).DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: last}); err != nil {
		t.Fatalf("restarted node does not see the last key: %v", err)
	}
	resp, err := r.KMS(lagging).ListKeys(ctxT(t), &kmspb.ListKeysRequest{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetKeys()) != 40 {
		t.Fatalf("restarted node lists %d keys, want 40", len(resp.GetKeys()))
	}
}

func TestNodeWithoutQuorumStopsServingUntilQuorumReturns(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	keyID := createKey(t, r.KMS(0), "")
	blob := encrypt(t, r.KMS(0), keyID, "before the split")
	survivor := r.Leader()
	others := r.Followers()
	for _, i := range others {
		r.Stop(i)
	}
	nodetest.WaitFor(t, 15*time.Second, "the node left alone to refuse requests", func() bool {
		_, err := r.KMS(survivor).Decrypt(ctxT(t), &kmspb.DecryptRequest{CiphertextBlob: blob, EncryptionContext: map[string]string{"app": "test"}})
		return status.Code(err) == codes.Unavailable
	})
	_, err := r.KMS(survivor).CreateKey(ctxT(t), &kmspb.CreateKeyRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("write without quorum: %v, want Unavailable", err)
	}
	r.Restart(others[0])
	if got := decrypt(t, r.KMS(survivor), blob); got != "before the split" {
		t.Fatalf("after quorum returned: %q", got)
	}
	createKey(t, r.KMS(survivor), "")
}

package transport_test

import (
	"testing"
	"time"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func TestRotationKeepsOldVersionsDecryptable(t *testing.T) {
	clock := &nodetest.Clock{}
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Clock: clock})
	c := r.KMS(0)
	ctx := ctxT(t)
	created, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetKeyMetadata().GetKeyId()
	first := created.GetKeyMetadata().GetCurrentKeyMaterialId()

	old, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("before rotation")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateKeyOnDemand(ctx, &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	newer, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("after rotation")})
	if err != nil {
		t.Fatal(err)
	}
	for blob, want := range map[string]string{string(old.GetCiphertextBlob()): "before rotation", string(newer.GetCiphertextBlob()): "after rotation"} {
		resp, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: []byte(blob)})
		if err != nil || string(resp.GetPlaintext()) != want {
			t.Fatalf("Decrypt = %q, %v; want %q", resp.GetPlaintext(), err, want)
		}
	}
	dec, _ := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: old.GetCiphertextBlob()})
	if dec.GetKeyMaterialId() != first {
		t.Fatalf("old ciphertext decrypted with material %s, want the first %s", dec.GetKeyMaterialId(), first)
	}

	status, err := c.GetKeyRotationStatus(ctx, &kmspb.GetKeyRotationStatusRequest{KeyId: id})
	if err != nil || status.GetKeyRotationEnabled() {
		t.Fatalf("rotation status before enabling = %v, %v", status, err)
	}
	if _, err := c.EnableKeyRotation(ctx, &kmspb.EnableKeyRotationRequest{KeyId: id, RotationPeriodInDays: 90}); err != nil {
		t.Fatal(err)
	}
	status, err = c.GetKeyRotationStatus(ctx, &kmspb.GetKeyRotationStatusRequest{KeyId: id})
	if err != nil || !status.GetKeyRotationEnabled() || status.GetRotationPeriodInDays() != 90 {
		t.Fatalf("rotation status = %v, %v", status, err)
	}
	clock.Advance(91 * 24 * time.Hour)
	nodetest.WaitFor(t, 10*time.Second, "the leader's automatic rotation", func() bool {
		list, err := c.ListKeyRotations(ctx, &kmspb.ListKeyRotationsRequest{KeyId: id})
		return err == nil && len(list.GetRotations()) == 2
	})
	list, err := c.ListKeyRotations(ctx, &kmspb.ListKeyRotationsRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	if list.GetRotations()[0].GetRotationType() != "ON_DEMAND" || list.GetRotations()[1].GetRotationType() != "AUTOMATIC" {
		t.Fatalf("rotations = %v", list.GetRotations())
	}
	if _, err := c.DisableKeyRotation(ctx, &kmspb.DisableKeyRotationRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
}

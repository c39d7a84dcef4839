package transport_test

import (
	"bytes"
	"testing"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func TestDataKeysAndReEncrypt(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	ctx := ctxT(t)
	for _, protection := range []string{"SOFTWARE", "HSM"} {
		t.Run(protection, func(t *testing.T) {
			k, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{ProtectionLevel: protection})
			if err != nil {
				t.Fatal(err)
			}
			id := k.GetKeyMetadata().GetKeyId()
			ec := map[string]string{"bucket": "invoices", "ünïcode": "✓"}

			dk, err := c.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: id, KeySpec: "AES_256", EncryptionContext: ec})
			if err != nil {
				t.Fatal(err)
			}
			if len(dk.GetPlaintext()) != 32 {
				t.Fatalf("AES_256 data key has %d bytes", len(dk.GetPlaintext()))
			}
			dec, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: dk.GetCiphertextBlob(), EncryptionContext: ec})
			if err != nil || !bytes.Equal(dec.GetPlaintext(), dk.GetPlaintext()) {
				t.Fatalf("data key does not decrypt to itself: %v", err)
			}
			noPT, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kmspb.GenerateDataKeyWithoutPlaintextRequest{KeyId: id, NumberOfBytes: 7})
			if err != nil {
				t.Fatal(err)
			}
			dec, err = c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: noPT.GetCiphertextBlob()})
			if err != nil || len(dec.GetPlaintext()) != 7 {
				t.Fatalf("data key without plaintext: %d bytes, %v", len(dec.GetPlaintext()), err)
			}

			other, _ := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
			re, err := c.ReEncrypt(ctx, &kmspb.ReEncryptRequest{
				CiphertextBlob:               dk.GetCiphertextBlob(),
				SourceEncryptionContext:      ec,
				DestinationKeyId:             other.GetKeyMetadata().GetKeyId(),
				DestinationEncryptionContext: map[string]string{"moved": "yes"},
			})
			if err != nil {
				t.Fatal(err)
			}
			if re.GetSourceKeyId() != k.GetKeyMetadata().GetArn() || re.GetKeyId() != other.GetKeyMetadata().GetArn() {
				t.Fatalf("ReEncrypt ids = %s -> %s", re.GetSourceKeyId(), re.GetKeyId())
			}
			dec, err = c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: re.GetCiphertextBlob(), EncryptionContext: map[string]string{"moved": "yes"}})
			if err != nil || !bytes.Equal(dec.GetPlaintext(), dk.GetPlaintext()) {
				t.Fatalf("re-encrypted blob: %v", err)
			}
		})
	}
	rnd, err := c.GenerateRandom(ctx, &kmspb.GenerateRandomRequest{NumberOfBytes: 1024})
	if err != nil || len(rnd.GetPlaintext()) != 1024 {
		t.Fatalf("GenerateRandom: %d bytes, %v", len(rnd.GetPlaintext()), err)
	}
}

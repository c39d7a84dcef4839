package transport_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// countingHSM counts the calls that reach the HSM on a request path.
type countingHSM struct {
	hsm.Backend
	unwraps, seals, opens, randoms atomic.Int64
}

func (c *countingHSM) UnwrapKeyToken(ctx context.Context, dk string, token []byte) (*crypto.Secret, error) {
	c.unwraps.Add(1)
	return c.Backend.UnwrapKeyToken(ctx, dk, token)
}

func (c *countingHSM) Seal(ctx context.Context, dk string, token, salt, nonce, pt, aad []byte) ([]byte, error) {
	c.seals.Add(1)
	return c.Backend.Seal(ctx, dk, token, salt, nonce, pt, aad)
}

func (c *countingHSM) Open(ctx context.Context, dk string, token, salt, nonce, sealed, aad []byte) (*crypto.Secret, error) {
	c.opens.Add(1)
	return c.Backend.Open(ctx, dk, token, salt, nonce, sealed, aad)
}

func (c *countingHSM) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	c.randoms.Add(1)
	return c.Backend.GenerateRandom(ctx, n)
}

func (c *countingHSM) total() int64 {
	return c.unwraps.Load() + c.seals.Load() + c.opens.Load() + c.randoms.Load()
}

func TestSoftwareKeysTouchTheHSMOnlyOnFirstUse(t *testing.T) {
	counter := &countingHSM{}
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
		cfg.WrapHSM = func(b hsm.Backend) hsm.Backend { counter.Backend = b; return counter }
	}})
	c := r.KMS(0)
	ctx := ctxT(t)
	k, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{ProtectionLevel: "SOFTWARE"})
	if err != nil {
		t.Fatal(err)
	}
	id := k.GetKeyMetadata().GetKeyId()
	first, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("warm")})
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.unwraps.Load(); got != 1 {
		t.Fatalf("first Encrypt unwrapped %d times, want 1", got)
	}
	before := counter.total()
	for i := 0; i < 200; i++ {
		if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("cached")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: first.GetCiphertextBlob()}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: id, KeySpec: "AES_256"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.total() - before; got != 0 {
		t.Fatalf("600 SOFTWARE-level requests made %d HSM calls once the key was cached, want 0", got)
	}

	hsmKey, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{ProtectionLevel: "HSM"})
	if err != nil {
		t.Fatal(err)
	}
	before = counter.seals.Load()
	if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: hsmKey.GetKeyMetadata().GetKeyId(), Plaintext: []byte("in the HSM")}); err != nil {
		t.Fatal(err)
	}
	if counter.seals.Load() != before+1 {
		t.Fatal("HSM-level Encrypt did not run inside the HSM")
	}
}

package hsmtest

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

// RunBenchmarks measures the per-request HSM operations on b.
func RunBenchmarks(bm *testing.B, b hsm.Backend) {
	ctx := context.Background()
	dk := uniqueID("bench")
	if err := b.CreateDomainKey(ctx, dk); err != nil {
		bm.Fatal(err)
	}
	token, err := b.GenerateKeyToken(ctx, dk)
	if err != nil {
		bm.Fatal(err)
	}
	salt, nonce := make([]byte, hsm.SaltSize), make([]byte, hsm.NonceSize)
	plaintext := make([]byte, 32)
	_, _ = rand.Read(salt)
	sealed, err := b.Seal(ctx, dk, token, salt, nonce, plaintext, nil)
	if err != nil {
		bm.Fatal(err)
	}
	run := func(name string, op func() error) {
		bm.Run(name, func(bm *testing.B) {
			for bm.Loop() {
				if err := op(); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
	run("GenerateKeyToken", func() error { _, err := b.GenerateKeyToken(ctx, dk); return err })
	run("UnwrapKeyToken", func() error { _, err := b.UnwrapKeyToken(ctx, dk, token); return err })
	run("Seal32", func() error { _, err := b.Seal(ctx, dk, token, salt, nonce, plaintext, nil); return err })
	run("Open32", func() error { _, err := b.Open(ctx, dk, token, salt, nonce, sealed, nil); return err })
	// Multi-region material and a region signature. Replication catch-up:
	// 100 backing keys in one batch (one RSA-OAEP unwrap for all) against
	// 100 batches of one key (one RSA-OAEP unwrap each, the cost of moving
	// keys one at a time). Export and import run on the same HSM, which
	// costs what two would.
	pub, err := b.TransportPublicKey(ctx)
	if err != nil {
		bm.Fatal(err)
	}
	signingToken, _, err := b.GenerateSigningKeyToken(ctx, dk)
	if err != nil {
		bm.Fatal(err)
	}
	digest := make([]byte, hsm.DigestSize)
	const batchSize = 100
	refs := make([]hsm.KeyTokenRef, batchSize)
	type oneKeyBatch struct{ sessionKey, wrapped []byte }
	single := make([]oneKeyBatch, batchSize)
	for i := range refs {
		refs[i] = hsm.KeyTokenRef{DomainKeyID: dk, Token: token}
		sessionKey, wrapped, err := b.ExportKeyTokens(ctx, pub, refs[i:i+1])
		if err != nil {
			bm.Fatal(err)
		}
		single[i] = oneKeyBatch{sessionKey, wrapped[0]}
	}
	sessionKey, batch, err := b.ExportKeyTokens(ctx, pub, refs)
	if err != nil {
		bm.Fatal(err)
	}
	run("ImportKeyTokens1x100", func() error {
		for _, one := range single {
			if _, err := b.ImportKeyTokens(ctx, dk, one.sessionKey, [][]byte{one.wrapped}); err != nil {
				return err
			}
		}
		return nil
	})
	run("ImportKeyTokens100", func() error { _, err := b.ImportKeyTokens(ctx, dk, sessionKey, batch); return err })
	run("ExportKeyTokens100", func() error { _, _, err := b.ExportKeyTokens(ctx, pub, refs); return err })
	run("GenerateSigningKeyToken", func() error { _, _, err := b.GenerateSigningKeyToken(ctx, dk); return err })
	run("SignWithKeyToken", func() error { _, err := b.SignWithKeyToken(ctx, dk, signingToken, digest); return err })
	bm.Run("Seal32Parallel", func(bm *testing.B) {
		bm.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := b.Seal(ctx, dk, token, salt, nonce, plaintext, nil); err != nil {
					bm.Error(err)
					return
				}
			}
		})
	})
}

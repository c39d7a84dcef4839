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
	// Multi-region material: an export to a transport key and the import
	// on the other side (here the same HSM, which costs the same), and a
	// region signature.
	pub, err := b.TransportPublicKey(ctx)
	if err != nil {
		bm.Fatal(err)
	}
	signingToken, _, err := b.GenerateSigningKeyToken(ctx, dk)
	if err != nil {
		bm.Fatal(err)
	}
	digest := make([]byte, hsm.DigestSize)
	run("ExportImportKeyToken", func() error {
		wrapped, err := b.ExportKeyToken(ctx, dk, token, pub)
		if err == nil {
			_, err = b.ImportKeyToken(ctx, dk, wrapped)
		}
		return err
	})
	// Replication catch-up: 100 backing keys one by one (an RSA-OAEP
	// unwrap each) against one batch (one RSA-OAEP unwrap for all).
	const batchSize = 100
	refs := make([]hsm.KeyTokenRef, batchSize)
	single := make([][]byte, batchSize)
	for i := range refs {
		refs[i] = hsm.KeyTokenRef{DomainKeyID: dk, Token: token}
		if single[i], err = b.ExportKeyToken(ctx, dk, token, pub); err != nil {
			bm.Fatal(err)
		}
	}
	sessionKey, batch, err := b.ExportKeyTokens(ctx, pub, refs)
	if err != nil {
		bm.Fatal(err)
	}
	run("ImportKeyToken100", func() error {
		for _, w := range single {
			if _, err := b.ImportKeyToken(ctx, dk, w); err != nil {
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

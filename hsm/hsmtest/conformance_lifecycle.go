package hsmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/hsm"
)

func testGenerateRandom(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	for _, n := range []int{0, 1, 32, 4096} {
		if got := must(b.GenerateRandom(ctx, n))(t); len(got) != n {
			t.Fatalf("GenerateRandom(%d) gave %d bytes", n, len(got))
		}
	}
	if bytes.Equal(must(b.GenerateRandom(ctx, 32))(t), must(b.GenerateRandom(ctx, 32))(t)) {
		t.Fatal("two 32-byte draws are equal")
	}
	_, err := b.GenerateRandom(ctx, -1)
	wantErr(t, err, hsm.ErrInvalidInput, "GenerateRandom(-1)")
}

// testConcurrent shares domain keys and tokens between goroutines, so the
// session pool and the backing-key cache are contended.
func testConcurrent(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	dks := []string{newDomainKey(t, b), newDomainKey(t, b)}
	tokens := make([][]byte, 6)
	for i := range tokens {
		tokens[i] = must(b.GenerateKeyToken(ctx, dks[i%2]))(t)
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				n := (g + i) % len(tokens)
				dk, token := dks[n%2], tokens[n]
				salt, nonce := random(t, hsm.SaltSize), random(t, hsm.NonceSize)
				plaintext := []byte(fmt.Sprintf("goroutine %d iteration %d", g, i))
				sealed, err := b.Seal(ctx, dk, token, salt, nonce, plaintext, nil)
				if err != nil {
					t.Error(err)
					return
				}
				opened, err := b.Open(ctx, dk, token, salt, nonce, sealed, nil)
				if err != nil || !bytes.Equal(opened.Bytes(), plaintext) {
					t.Errorf("open: %v", err)
					return
				}
				switch i % 3 {
				case 0:
					fresh, err := b.GenerateKeyToken(ctx, dk)
					if err == nil {
						_, err = b.UnwrapKeyToken(ctx, dk, fresh)
					}
					if err != nil {
						t.Error(err)
						return
					}
				case 1:
					if _, err := b.GenerateRandom(ctx, 16); err != nil {
						t.Error(err)
						return
					}
				case 2:
					if has, err := b.HasDomainKey(ctx, dk); err != nil || !has {
						t.Errorf("HasDomainKey = %v, %v", has, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func testCancelledContext(t *testing.T, b hsm.Backend) {
	live := ctxT(t)
	in := newSealInput(t, b)
	sealed := must(b.Seal(live, in.dk, in.token, in.salt, in.nonce, []byte("x"), nil))(t)
	pub := must(b.TransportPublicKey(live))(t)
	wrapped := must(b.ExportDomainKey(live, in.dk, pub))(t)
	refs := []hsm.KeyTokenRef{{DomainKeyID: in.dk, Token: in.token}}
	sessionKey, batch, err := b.ExportKeyTokens(live, pub, refs)
	noErr(t, err)
	signingToken, _, err := b.GenerateSigningKeyToken(live, in.dk)
	noErr(t, err)
	digest := random(t, hsm.DigestSize)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"CreateDomainKey":    func() error { return b.CreateDomainKey(ctx, uniqueID("dk")) },
		"HasDomainKey":       func() error { _, err := b.HasDomainKey(ctx, in.dk); return err },
		"TransportPublicKey": func() error { _, err := b.TransportPublicKey(ctx); return err },
		"ExportDomainKey":    func() error { _, err := b.ExportDomainKey(ctx, in.dk, pub); return err },
		"ImportDomainKey":    func() error { return b.ImportDomainKey(ctx, uniqueID("dk"), wrapped) },
		"GenerateKeyToken":   func() error { _, err := b.GenerateKeyToken(ctx, in.dk); return err },
		"UnwrapKeyToken":     func() error { _, err := b.UnwrapKeyToken(ctx, in.dk, in.token); return err },
		"Seal": func() error {
			_, err := b.Seal(ctx, in.dk, in.token, in.salt, in.nonce, []byte("x"), nil)
			return err
		},
		"Open": func() error {
			_, err := b.Open(ctx, in.dk, in.token, in.salt, in.nonce, sealed, nil)
			return err
		},
		"GenerateRandom":  func() error { _, err := b.GenerateRandom(ctx, 8); return err },
		"ExportKeyTokens": func() error { _, _, err := b.ExportKeyTokens(ctx, pub, refs); return err },
		"ImportKeyTokens": func() error { _, err := b.ImportKeyTokens(ctx, in.dk, sessionKey, batch); return err },
		"GenerateSigningKeyToken": func() error {
			_, _, err := b.GenerateSigningKeyToken(ctx, in.dk)
			return err
		},
		"SignWithKeyToken": func() error { _, err := b.SignWithKeyToken(ctx, in.dk, signingToken, digest); return err },
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s with a cancelled context did not return", name)
		}
	}
}

func testClosed(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	in := newSealInput(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.GenerateKeyToken(ctx, in.dk); err == nil {
		t.Error("GenerateKeyToken after Close succeeded")
	}
	if _, err := b.Seal(ctx, in.dk, in.token, in.salt, in.nonce, nil, nil); err == nil {
		t.Error("Seal after Close succeeded")
	}
	if _, err := b.HasDomainKey(ctx, in.dk); err == nil {
		t.Error("HasDomainKey after Close succeeded")
	}
	if _, _, err := b.GenerateSigningKeyToken(ctx, in.dk); err == nil {
		t.Error("GenerateSigningKeyToken after Close succeeded")
	}
	if _, err := b.ImportKeyTokens(ctx, in.dk, make([]byte, wrappedSize), [][]byte{make([]byte, 40)}); err == nil {
		t.Error("ImportKeyTokens after Close succeeded")
	}
}

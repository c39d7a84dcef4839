package hsmtest

import (
	"bytes"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

type sealInput struct {
	dk                      string
	token, salt, nonce, aad []byte
}

func newSealInput(t *testing.T, b hsm.Backend) sealInput {
	dk := newDomainKey(t, b)
	return sealInput{
		dk:    dk,
		token: must(b.GenerateKeyToken(ctxT(t), dk))(t),
		salt:  random(t, hsm.SaltSize),
		nonce: random(t, hsm.NonceSize),
		aad:   []byte("key-id|version|context"),
	}
}

func testSealOpen(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	in := newSealInput(t, b)
	for _, size := range []int{0, 1, 32, 4096} {
		for _, aad := range [][]byte{nil, in.aad} {
			plaintext := random(t, size)
			sealed := must(b.Seal(ctx, in.dk, in.token, in.salt, in.nonce, plaintext, aad))(t)
			if len(sealed) != size+hsm.TagSize {
				t.Fatalf("sealed %d bytes into %d, want %d", size, len(sealed), size+hsm.TagSize)
			}
			opened := must(b.Open(ctx, in.dk, in.token, in.salt, in.nonce, sealed, aad))(t)
			if !bytes.Equal(opened.Bytes(), plaintext) {
				t.Fatalf("%d bytes, aad %q: round trip changed the plaintext", size, aad)
			}
		}
	}
	_, err := b.Seal(ctx, in.dk, in.token, in.salt[:16], in.nonce, nil, nil)
	wantErr(t, err, hsm.ErrInvalidInput, "Seal with a 16-byte salt")
	_, err = b.Seal(ctx, in.dk, in.token, in.salt, make([]byte, 16), nil, nil)
	wantErr(t, err, hsm.ErrInvalidInput, "Seal with a 16-byte nonce")
	_, err = b.Seal(ctx, in.dk, in.token[:39], in.salt, in.nonce, nil, nil)
	wantErr(t, err, hsm.ErrInvalidInput, "Seal with a short token")
	_, err = b.Seal(ctx, uniqueID("missing"), in.token, in.salt, in.nonce, nil, nil)
	wantErr(t, err, hsm.ErrNotFound, "Seal under an unknown domain key")
}

func testOpenRejectsDamage(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	in := newSealInput(t, b)
	plaintext := []byte("thirty-two bytes of secret data!")
	sealed := must(b.Seal(ctx, in.dk, in.token, in.salt, in.nonce, plaintext, in.aad))(t)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x80
		return c
	}
	otherDK := newDomainKey(t, b)
	otherToken := must(b.GenerateKeyToken(ctx, in.dk))(t)
	for _, c := range []struct {
		name                            string
		dk                              string
		token, salt, nonce, sealed, aad []byte
	}{
		{"wrong aad", in.dk, in.token, in.salt, in.nonce, sealed, []byte("other context")},
		{"missing aad", in.dk, in.token, in.salt, in.nonce, sealed, nil},
		{"wrong nonce", in.dk, in.token, in.salt, flip(in.nonce, 0), sealed, in.aad},
		{"wrong salt", in.dk, in.token, flip(in.salt, 31), in.nonce, sealed, in.aad},
		{"flipped tag", in.dk, in.token, in.salt, in.nonce, flip(sealed, len(sealed)-1), in.aad},
		{"flipped ciphertext", in.dk, in.token, in.salt, in.nonce, flip(sealed, 0), in.aad},
		{"truncated", in.dk, in.token, in.salt, in.nonce, sealed[:len(sealed)-1], in.aad},
		{"shorter than a tag", in.dk, in.token, in.salt, in.nonce, sealed[:hsm.TagSize-1], in.aad},
		{"another backing key", in.dk, otherToken, in.salt, in.nonce, sealed, in.aad},
		{"tampered token", in.dk, flip(in.token, 3), in.salt, in.nonce, sealed, in.aad},
		{"token under another domain key", otherDK, in.token, in.salt, in.nonce, sealed, in.aad},
	} {
		opened, err := b.Open(ctx, c.dk, c.token, c.salt, c.nonce, c.sealed, c.aad)
		wantErr(t, err, hsm.ErrDecrypt, c.name)
		if opened != nil {
			t.Errorf("%s: Open returned plaintext with its error", c.name)
		}
	}
}

func testSealMatchesContract(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	in := newSealInput(t, b)
	key := must(b.UnwrapKeyToken(ctx, in.dk, in.token))(t)
	for _, plaintext := range [][]byte{nil, []byte("x"), random(t, 100)} {
		got := must(b.Seal(ctx, in.dk, in.token, in.salt, in.nonce, plaintext, in.aad))(t)
		want := must(referenceSeal(key.Bytes(), in.salt, in.nonce, plaintext, in.aad))(t)
		if !bytes.Equal(got, want) {
			t.Fatalf("Seal of %d bytes = %x, the contract's derivation gives %x", len(plaintext), got, want)
		}
	}
}

package hsmtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

// CheckKeyTokenBatchTransfer moves several backing keys, under two of the
// source's domain keys, from one region's HSM to another's in one batch
// (ExportKeyTokens, ImportKeyTokens) and checks that each imported token
// stands for the same key as its source token. The two backends may be
// different kinds.
func CheckKeyTokenBatchTransfer(t *testing.T, from, to hsm.Backend) {
	t.Helper()
	ctx := ctxT(t)
	dkFrom, dkFrom2, dkTo := newDomainKey(t, from), newDomainKey(t, from), newDomainKey(t, to)
	var refs []hsm.KeyTokenRef
	for i := range 5 {
		dk := dkFrom
		if i%2 == 1 {
			dk = dkFrom2
		}
		refs = append(refs, hsm.KeyTokenRef{DomainKeyID: dk, Token: must(from.GenerateKeyToken(ctx, dk))(t)})
	}
	pub := must(to.TransportPublicKey(ctx))(t)
	sessionKey, wrapped, err := from.ExportKeyTokens(ctx, pub, refs)
	noErr(t, err)
	if len(sessionKey) != wrappedSize {
		t.Fatalf("session key is %d bytes, want %d", len(sessionKey), wrappedSize)
	}
	if len(wrapped) != len(refs) {
		t.Fatalf("%d wrapped keys for %d tokens", len(wrapped), len(refs))
	}
	for i, w := range wrapped {
		if len(w) != hsm.BackingKeySize+8 {
			t.Fatalf("wrapped key %d is %d bytes, want %d", i, len(w), hsm.BackingKeySize+8)
		}
	}
	imported := must(to.ImportKeyTokens(ctx, dkTo, sessionKey, wrapped))(t)
	if len(imported) != len(refs) {
		t.Fatalf("%d imported tokens for %d keys", len(imported), len(refs))
	}
	for i, ref := range refs {
		if len(imported[i]) != hsm.BackingKeySize+8 {
			t.Fatalf("imported token %d is %d bytes", i, len(imported[i]))
		}
		if bytes.Equal(imported[i], ref.Token) {
			t.Fatalf("imported token %d equals its source token", i)
		}
		source := must(from.UnwrapKeyToken(ctx, ref.DomainKeyID, ref.Token))(t)
		dest := must(to.UnwrapKeyToken(ctx, dkTo, imported[i]))(t)
		if !bytes.Equal(source.Bytes(), dest.Bytes()) {
			t.Fatalf("key %d: the source and the imported token unwrap to different keys", i)
		}
		salt, nonce := random(t, hsm.SaltSize), random(t, hsm.NonceSize)
		sealed := must(from.Seal(ctx, ref.DomainKeyID, ref.Token, salt, nonce, []byte("batch"), []byte("aad")))(t)
		opened := must(to.Open(ctx, dkTo, imported[i], salt, nonce, sealed, []byte("aad")))(t)
		if string(opened.Bytes()) != "batch" {
			t.Fatalf("key %d: sealed data opens to %q", i, opened.Bytes())
		}
		back := must(to.Seal(ctx, dkTo, imported[i], salt, nonce, []byte("back"), nil))(t)
		if opened := must(from.Open(ctx, ref.DomainKeyID, ref.Token, salt, nonce, back, nil))(t); string(opened.Bytes()) != "back" {
			t.Fatalf("key %d: sealed data opens at the source to %q", i, opened.Bytes())
		}
	}

	// A fresh session key per call: a second export differs entirely and
	// imports to the same keys.
	sessionKey2, wrapped2, err := from.ExportKeyTokens(ctx, pub, refs[:1])
	noErr(t, err)
	if bytes.Equal(sessionKey2, sessionKey) || bytes.Equal(wrapped2[0], wrapped[0]) {
		t.Fatal("two exports of one token are equal")
	}
	again := must(to.ImportKeyTokens(ctx, dkTo, sessionKey2, wrapped2))(t)
	first := must(to.UnwrapKeyToken(ctx, dkTo, imported[0]))(t)
	if second := must(to.UnwrapKeyToken(ctx, dkTo, again[0]))(t); !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("a second export imports to another key")
	}
}

func testKeyTokenBatchTransferErrors(t *testing.T, a, b hsm.Backend) {
	ctx := ctxT(t)
	dkA, otherA, dkB := newDomainKey(t, a), newDomainKey(t, a), newDomainKey(t, b)
	token := must(a.GenerateKeyToken(ctx, dkA))(t)
	token2 := must(a.GenerateKeyToken(ctx, dkA))(t)
	pubB := must(b.TransportPublicKey(ctx))(t)
	good := []hsm.KeyTokenRef{{DomainKeyID: dkA, Token: token}, {DomainKeyID: dkA, Token: token2}}
	export := func(pub []byte, refs []hsm.KeyTokenRef) error {
		_, _, err := a.ExportKeyTokens(ctx, pub, refs)
		return err
	}

	wantErr(t, export(pubB, nil), hsm.ErrInvalidInput, "export of an empty list")
	wantErr(t, export(pubB, []hsm.KeyTokenRef{good[0], {DomainKeyID: uniqueID("missing"), Token: token2}}),
		hsm.ErrNotFound, "export under an unknown domain key")
	wantErr(t, export(pubB, []hsm.KeyTokenRef{good[0], {DomainKeyID: otherA, Token: token2}}),
		hsm.ErrDecrypt, "export under another domain key")
	for _, i := range []int{0, 8, len(token) - 1} {
		bad := bytes.Clone(token2)
		bad[i] ^= 0x01
		wantErr(t, export(pubB, []hsm.KeyTokenRef{good[0], {DomainKeyID: dkA, Token: bad}}),
			hsm.ErrDecrypt, fmt.Sprintf("export with byte %d of a token flipped", i))
	}
	wantErr(t, export(pubB, []hsm.KeyTokenRef{{DomainKeyID: dkA, Token: token[:39]}}), hsm.ErrInvalidInput, "export of a short token")
	wantErr(t, export([]byte("not a key"), good), hsm.ErrInvalidInput, "export to garbage")
	small := must(rsa.GenerateKey(rand.Reader, 2048))(t)
	wantErr(t, export(must(x509.MarshalPKIXPublicKey(&small.PublicKey))(t), good), hsm.ErrInvalidInput, "export to an RSA-2048 key")
	signing, _, err := a.GenerateSigningKeyToken(ctx, dkA)
	noErr(t, err)
	wantErr(t, export(pubB, []hsm.KeyTokenRef{{DomainKeyID: dkA, Token: signing}}), hsm.ErrInvalidInput, "export of a signing key token")

	sessionKey, wrapped, err := a.ExportKeyTokens(ctx, pubB, good)
	noErr(t, err)
	_, err = b.ImportKeyTokens(ctx, dkB, sessionKey, nil)
	wantErr(t, err, hsm.ErrInvalidInput, "import of an empty list")
	_, err = b.ImportKeyTokens(ctx, uniqueID("missing"), sessionKey, wrapped)
	wantErr(t, err, hsm.ErrNotFound, "import under an unknown domain key")
	_, err = a.ImportKeyTokens(ctx, dkA, sessionKey, wrapped)
	wantErr(t, err, hsm.ErrNotFound, "import without a transport key")
	must(a.TransportPublicKey(ctx))(t)
	_, err = a.ImportKeyTokens(ctx, dkA, sessionKey, wrapped)
	wantErr(t, err, hsm.ErrDecrypt, "import of a session key made for another HSM")
	for _, i := range []int{0, 1, 200, wrappedSize - 1} {
		bad := bytes.Clone(sessionKey)
		bad[i] ^= 0x01
		_, err = b.ImportKeyTokens(ctx, dkB, bad, wrapped)
		wantErr(t, err, hsm.ErrDecrypt, fmt.Sprintf("import with byte %d of the session key flipped", i))
	}
	_, err = b.ImportKeyTokens(ctx, dkB, random(t, wrappedSize), wrapped)
	wantErr(t, err, hsm.ErrDecrypt, "import of random bytes as the session key")
	_, err = b.ImportKeyTokens(ctx, dkB, sessionKey[:wrappedSize-1], wrapped)
	wantErr(t, err, hsm.ErrInvalidInput, "import of a short session key")
	for _, i := range []int{0, 8, 39} {
		bad := [][]byte{wrapped[0], bytes.Clone(wrapped[1])}
		bad[1][i] ^= 0x01
		_, err = b.ImportKeyTokens(ctx, dkB, sessionKey, bad)
		wantErr(t, err, hsm.ErrDecrypt, fmt.Sprintf("import with byte %d of a wrapped key flipped", i))
	}
	_, err = b.ImportKeyTokens(ctx, dkB, sessionKey, [][]byte{wrapped[1], wrapped[0][:39]})
	wantErr(t, err, hsm.ErrInvalidInput, "import of a short wrapped key")
	_, err = b.ImportKeyTokens(ctx, dkB, sessionKey, [][]byte{random(t, 40)})
	wantErr(t, err, hsm.ErrDecrypt, "import of random bytes as a wrapped key")
	// Keys from another batch are under another session key.
	sessionKey2, wrapped2, err := a.ExportKeyTokens(ctx, pubB, good)
	noErr(t, err)
	_, err = b.ImportKeyTokens(ctx, dkB, sessionKey2, [][]byte{wrapped2[0], wrapped[1]})
	wantErr(t, err, hsm.ErrDecrypt, "import of a key from another batch")

	// A well-wrapped session key of the wrong size is refused (as the
	// wrong size, or because the keys do not unwrap under it).
	parsed := must(x509.ParsePKIXPublicKey(pubB))(t).(*rsa.PublicKey)
	for _, size := range []int{1, 16, 24, 33, 48} {
		sk := random(t, size)
		odd := must(rsa.EncryptOAEP(sha1.New(), rand.Reader, parsed, sk, nil))(t)
		_, err = b.ImportKeyTokens(ctx, dkB, odd, wrapped)
		if err == nil {
			t.Errorf("import under a %d-byte session key succeeded", size)
		}
	}
}

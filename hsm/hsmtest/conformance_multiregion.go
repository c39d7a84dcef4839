package hsmtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

// wrappedSize is one RSA-3072 block, the size of everything wrapped to a
// transport key.
const wrappedSize = 3072 / 8

// parseSigningPublicKey checks that der is a PKIX P-256 ECDSA public key.
func parseSigningPublicKey(t *testing.T, der []byte) *ecdsa.PublicKey {
	t.Helper()
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("signing public key is not PKIX DER: %v", err)
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("signing public key is %T, want ECDSA P-256", parsed)
	}
	return pub
}

func testSigningKeyToken(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	dk, otherDK := newDomainKey(t, b), newDomainKey(t, b)
	token, pubDER, err := b.GenerateSigningKeyToken(ctx, dk)
	noErr(t, err)
	pub := parseSigningPublicKey(t, pubDER)
	digest := sha256.Sum256([]byte("replication batch 1"))
	sig := must(b.SignWithKeyToken(ctx, dk, token, digest[:]))(t)
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("signature does not verify")
	}
	other := sha256.Sum256([]byte("replication batch 2"))
	if ecdsa.VerifyASN1(pub, other[:], sig) {
		t.Fatal("signature verifies over another digest")
	}
	if otherSig := must(b.SignWithKeyToken(ctx, dk, token, other[:]))(t); !ecdsa.VerifyASN1(pub, other[:], otherSig) {
		t.Fatal("signature over a second digest does not verify")
	}

	token2, pubDER2, err := b.GenerateSigningKeyToken(ctx, dk)
	noErr(t, err)
	if bytes.Equal(token, token2) || bytes.Equal(pubDER, pubDER2) {
		t.Fatal("two generated signing keys are equal")
	}
	if ecdsa.VerifyASN1(parseSigningPublicKey(t, pubDER2), digest[:], sig) {
		t.Fatal("a signature verifies under another key")
	}

	_, _, err = b.GenerateSigningKeyToken(ctx, uniqueID("missing"))
	wantErr(t, err, hsm.ErrNotFound, "GenerateSigningKeyToken under an unknown domain key")
	_, err = b.SignWithKeyToken(ctx, uniqueID("missing"), token, digest[:])
	wantErr(t, err, hsm.ErrNotFound, "sign under an unknown domain key")
	_, err = b.SignWithKeyToken(ctx, otherDK, token, digest[:])
	wantErr(t, err, hsm.ErrDecrypt, "sign with a token under another domain key")
	for _, i := range []int{0, 7, 8, len(token) / 2, len(token) - 1} {
		bad := bytes.Clone(token)
		bad[i] ^= 0x01
		_, err = b.SignWithKeyToken(ctx, dk, bad, digest[:])
		wantErr(t, err, hsm.ErrDecrypt, fmt.Sprintf("sign with byte %d of the token flipped", i))
	}
	for _, size := range []int{0, 20, 31, 33, 64} {
		_, err = b.SignWithKeyToken(ctx, dk, token, make([]byte, size))
		wantErr(t, err, hsm.ErrInvalidInput, fmt.Sprintf("sign a %d-byte digest", size))
	}
	_, err = b.SignWithKeyToken(ctx, dk, append(bytes.Clone(token), make([]byte, 8)...), digest[:])
	wantErr(t, err, hsm.ErrDecrypt, "sign with a token one block long")
	_, err = b.SignWithKeyToken(ctx, dk, token[:len(token)-1], digest[:])
	wantErr(t, err, hsm.ErrInvalidInput, "sign with a token that is not whole blocks")

	// Symmetric and signing key tokens do not stand in for each other.
	keyToken := must(b.GenerateKeyToken(ctx, dk))(t)
	_, err = b.SignWithKeyToken(ctx, dk, keyToken, digest[:])
	wantErr(t, err, hsm.ErrInvalidInput, "sign with a symmetric key token")
	_, err = b.UnwrapKeyToken(ctx, dk, token)
	wantErr(t, err, hsm.ErrInvalidInput, "UnwrapKeyToken of a signing key token")
	_, _, err = b.ExportKeyTokens(ctx, must(b.TransportPublicKey(ctx))(t), []hsm.KeyTokenRef{{DomainKeyID: dk, Token: token}})
	wantErr(t, err, hsm.ErrInvalidInput, "ExportKeyTokens of a signing key token")
	_, err = b.Seal(ctx, dk, token, random(t, hsm.SaltSize), random(t, hsm.NonceSize), nil, nil)
	wantErr(t, err, hsm.ErrInvalidInput, "Seal with a signing key token")

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				d := sha256.Sum256(fmt.Appendf(nil, "goroutine %d message %d", g, i))
				s, err := b.SignWithKeyToken(ctx, dk, token, d[:])
				if err != nil {
					t.Error(err)
					return
				}
				if !ecdsa.VerifyASN1(pub, d[:], s) {
					t.Errorf("goroutine %d message %d: signature does not verify", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// CheckSigningKeyTokenSharing checks that the nodes of one region share a
// signing key: a signing key token made on one HSM signs on another that
// holds the same domain key (moved with ExportDomainKey/ImportDomainKey).
// The two may be different kinds.
func CheckSigningKeyTokenSharing(t *testing.T, a, b hsm.Backend) {
	t.Helper()
	ctx := ctxT(t)
	dk := newDomainKey(t, a)
	noErr(t, b.ImportDomainKey(ctx, dk, must(a.ExportDomainKey(ctx, dk, must(b.TransportPublicKey(ctx))(t)))(t)))
	for _, pair := range []struct {
		name         string
		maker, taker hsm.Backend
	}{{"exporter to importer", a, b}, {"importer to exporter", b, a}} {
		token, pubDER, err := pair.maker.GenerateSigningKeyToken(ctx, dk)
		noErr(t, err)
		pub := parseSigningPublicKey(t, pubDER)
		digest := sha256.Sum256([]byte(pair.name))
		sig := must(pair.taker.SignWithKeyToken(ctx, dk, token, digest[:]))(t)
		if !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatalf("%s: the signature does not verify", pair.name)
		}
	}
}

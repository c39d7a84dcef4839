package hsmtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
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

// CheckKeyTokenTransfer moves a backing key from one region's HSM to
// another's: from exports its key token to to's transport key, to imports it
// under its own domain key, and the two tokens then stand for one key. The
// two backends may be different kinds.
func CheckKeyTokenTransfer(t *testing.T, from, to hsm.Backend) {
	t.Helper()
	ctx := ctxT(t)
	dkFrom, dkTo := newDomainKey(t, from), newDomainKey(t, to)
	token := must(from.GenerateKeyToken(ctx, dkFrom))(t)
	pub := must(to.TransportPublicKey(ctx))(t)
	wrapped := must(from.ExportKeyToken(ctx, dkFrom, token, pub))(t)
	if len(wrapped) != wrappedSize {
		t.Fatalf("exported key is %d bytes, want %d", len(wrapped), wrappedSize)
	}
	imported := must(to.ImportKeyToken(ctx, dkTo, wrapped))(t)
	if len(imported) != hsm.BackingKeySize+8 {
		t.Fatalf("imported token is %d bytes, want %d", len(imported), hsm.BackingKeySize+8)
	}
	if bytes.Equal(imported, token) {
		t.Fatal("the imported token equals the source token: it is not under the destination's domain key")
	}

	// Protection level HSM: data sealed in one region opens in the other.
	for _, dir := range []struct {
		name           string
		sealer, opener hsm.Backend
		sealDK, openDK string
		sealT, openT   []byte
	}{
		{"source to destination", from, to, dkFrom, dkTo, token, imported},
		{"destination to source", to, from, dkTo, dkFrom, imported, token},
	} {
		salt, nonce := random(t, hsm.SaltSize), random(t, hsm.NonceSize)
		sealed := must(dir.sealer.Seal(ctx, dir.sealDK, dir.sealT, salt, nonce, []byte("multi-region"), []byte("aad")))(t)
		opened := must(dir.opener.Open(ctx, dir.openDK, dir.openT, salt, nonce, sealed, []byte("aad")))(t)
		if string(opened.Bytes()) != "multi-region" {
			t.Fatalf("%s: sealed data opens to %q", dir.name, opened.Bytes())
		}
	}

	// Protection level SOFTWARE: both tokens unwrap to the same key.
	source := must(from.UnwrapKeyToken(ctx, dkFrom, token))(t)
	dest := must(to.UnwrapKeyToken(ctx, dkTo, imported))(t)
	if !bytes.Equal(source.Bytes(), dest.Bytes()) {
		t.Fatal("the source and the imported token unwrap to different keys")
	}

	// OAEP is randomized: a second export differs and imports to the same key.
	again := must(from.ExportKeyToken(ctx, dkFrom, token, pub))(t)
	if bytes.Equal(again, wrapped) {
		t.Fatal("two exports of one token are equal")
	}
	second := must(to.UnwrapKeyToken(ctx, dkTo, must(to.ImportKeyToken(ctx, dkTo, again))(t)))(t)
	if !bytes.Equal(second.Bytes(), source.Bytes()) {
		t.Fatal("a second export imports to another key")
	}
}

func testKeyTokenTransferErrors(t *testing.T, a, b hsm.Backend) {
	ctx := ctxT(t)
	dkA, otherA, dkB := newDomainKey(t, a), newDomainKey(t, a), newDomainKey(t, b)
	token := must(a.GenerateKeyToken(ctx, dkA))(t)
	pubB := must(b.TransportPublicKey(ctx))(t)

	_, err := a.ExportKeyToken(ctx, uniqueID("missing"), token, pubB)
	wantErr(t, err, hsm.ErrNotFound, "export under an unknown domain key")
	_, err = a.ExportKeyToken(ctx, otherA, token, pubB)
	wantErr(t, err, hsm.ErrDecrypt, "export under another domain key")
	for _, i := range []int{0, 8, len(token) - 1} {
		bad := bytes.Clone(token)
		bad[i] ^= 0x01
		_, err = a.ExportKeyToken(ctx, dkA, bad, pubB)
		wantErr(t, err, hsm.ErrDecrypt, fmt.Sprintf("export with byte %d of the token flipped", i))
	}
	_, err = a.ExportKeyToken(ctx, dkA, token[:39], pubB)
	wantErr(t, err, hsm.ErrInvalidInput, "export of a short token")
	_, err = a.ExportKeyToken(ctx, dkA, token, []byte("not a key"))
	wantErr(t, err, hsm.ErrInvalidInput, "export to garbage")
	small := must(rsa.GenerateKey(rand.Reader, 2048))(t)
	_, err = a.ExportKeyToken(ctx, dkA, token, must(x509.MarshalPKIXPublicKey(&small.PublicKey))(t))
	wantErr(t, err, hsm.ErrInvalidInput, "export to an RSA-2048 key")

	wrappedForB := must(a.ExportKeyToken(ctx, dkA, token, pubB))(t)
	_, err = b.ImportKeyToken(ctx, uniqueID("missing"), wrappedForB)
	wantErr(t, err, hsm.ErrNotFound, "import under an unknown domain key")
	_, err = a.ImportKeyToken(ctx, dkA, wrappedForB)
	wantErr(t, err, hsm.ErrNotFound, "import without a transport key")
	must(a.TransportPublicKey(ctx))(t)
	_, err = a.ImportKeyToken(ctx, dkA, wrappedForB)
	wantErr(t, err, hsm.ErrDecrypt, "import of a key wrapped for another HSM")
	for _, i := range []int{0, 1, 200, wrappedSize - 1} {
		bad := bytes.Clone(wrappedForB)
		bad[i] ^= 0x01
		_, err = b.ImportKeyToken(ctx, dkB, bad)
		wantErr(t, err, hsm.ErrDecrypt, fmt.Sprintf("import with byte %d flipped", i))
	}
	_, err = b.ImportKeyToken(ctx, dkB, random(t, wrappedSize))
	wantErr(t, err, hsm.ErrDecrypt, "import of random bytes")
	_, err = b.ImportKeyToken(ctx, dkB, wrappedForB[:wrappedSize-1])
	wantErr(t, err, hsm.ErrInvalidInput, "import of a short blob")

	// A well-wrapped key of the wrong size is not a backing key. (25 to 31
	// bytes are left out: SoftHSM pads those to 32 and cannot tell.)
	parsed := must(x509.ParsePKIXPublicKey(pubB))(t).(*rsa.PublicKey)
	for _, size := range []int{1, 16, 24, 33, 48} {
		odd := must(rsa.EncryptOAEP(sha1.New(), rand.Reader, parsed, random(t, size), nil))(t)
		_, err = b.ImportKeyToken(ctx, dkB, odd)
		wantErr(t, err, hsm.ErrInvalidInput, fmt.Sprintf("import of a %d-byte key", size))
	}
}

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
	_, err = b.ExportKeyToken(ctx, dk, token, must(b.TransportPublicKey(ctx))(t))
	wantErr(t, err, hsm.ErrInvalidInput, "ExportKeyToken of a signing key token")
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

package hsmtest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

// CheckDomainKeyTransfer moves a domain key from one backend to another
// through the transport key and checks that both then make and read the
// same key tokens and sealed data. The two may be different kinds.
func CheckDomainKeyTransfer(t *testing.T, from, to hsm.Backend) {
	t.Helper()
	ctx := ctxT(t)
	id := newDomainKey(t, from)
	pub := must(to.TransportPublicKey(ctx))(t)
	parsed, err := x509.ParsePKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("transport public key is not PKIX DER: %v", err)
	}
	if rsaKey, ok := parsed.(*rsa.PublicKey); !ok || rsaKey.N.BitLen() != 3072 {
		t.Fatalf("transport public key is %T, want RSA-3072", parsed)
	}
	if again := must(to.TransportPublicKey(ctx))(t); !bytes.Equal(pub, again) {
		t.Fatal("TransportPublicKey changed between calls")
	}
	wrapped := must(from.ExportDomainKey(ctx, id, pub))(t)
	noErr(t, to.ImportDomainKey(ctx, id, wrapped))
	if has := must(to.HasDomainKey(ctx, id))(t); !has {
		t.Fatal("imported domain key not found")
	}
	noErr(t, to.ImportDomainKey(ctx, id, wrapped)) // a repeat is a no-op

	for _, pair := range []struct {
		name         string
		maker, taker hsm.Backend
	}{{"exporter to importer", from, to}, {"importer to exporter", to, from}} {
		token := must(pair.maker.GenerateKeyToken(ctx, id))(t)
		made := must(pair.maker.UnwrapKeyToken(ctx, id, token))(t)
		taken := must(pair.taker.UnwrapKeyToken(ctx, id, token))(t)
		if !bytes.Equal(made.Bytes(), taken.Bytes()) {
			t.Fatalf("%s: the token unwraps to different keys", pair.name)
		}
		salt, nonce := random(t, hsm.SaltSize), random(t, hsm.NonceSize)
		sealed := must(pair.maker.Seal(ctx, id, token, salt, nonce, []byte("across"), nil))(t)
		opened := must(pair.taker.Open(ctx, id, token, salt, nonce, sealed, nil))(t)
		if string(opened.Bytes()) != "across" {
			t.Fatalf("%s: sealed data opens to %q", pair.name, opened.Bytes())
		}
	}
}

func testTransferErrors(t *testing.T, a, b hsm.Backend) {
	ctx := ctxT(t)
	id := newDomainKey(t, a)
	_, err := a.ExportDomainKey(ctx, uniqueID("missing"), must(b.TransportPublicKey(ctx))(t))
	wantErr(t, err, hsm.ErrNotFound, "export of an unknown domain key")
	_, err = a.ExportDomainKey(ctx, id, []byte("not a key"))
	wantErr(t, err, hsm.ErrInvalidInput, "export to garbage")
	small := must(rsa.GenerateKey(rand.Reader, 2048))(t)
	smallDER := must(x509.MarshalPKIXPublicKey(&small.PublicKey))(t)
	_, err = a.ExportDomainKey(ctx, id, smallDER)
	wantErr(t, err, hsm.ErrInvalidInput, "export to an RSA-2048 key")

	wrappedForB := must(a.ExportDomainKey(ctx, id, must(b.TransportPublicKey(ctx))(t)))(t)
	wantErr(t, a.ImportDomainKey(ctx, uniqueID("dk"), wrappedForB), hsm.ErrNotFound, "import without a transport key")
	must(a.TransportPublicKey(ctx))(t)
	wantErr(t, a.ImportDomainKey(ctx, uniqueID("dk"), wrappedForB), hsm.ErrDecrypt, "import of a key wrapped for another HSM")
	wantErr(t, b.ImportDomainKey(ctx, uniqueID("dk"), random(t, 384)), hsm.ErrDecrypt, "import of random bytes")
	wantErr(t, b.ImportDomainKey(ctx, uniqueID("dk"), wrappedForB[:100]), hsm.ErrInvalidInput, "import of a short blob")
	corrupt := bytes.Clone(wrappedForB)
	corrupt[200] ^= 1
	wantErr(t, b.ImportDomainKey(ctx, id, corrupt), hsm.ErrDecrypt, "import of a corrupted blob")
	if has := must(b.HasDomainKey(ctx, id))(t); has {
		t.Fatal("a failed import left a domain key behind")
	}
}

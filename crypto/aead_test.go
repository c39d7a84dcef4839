package crypto

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
)

func testBackingKey() *Secret { return NewSecret(bytes.Repeat([]byte{0x42}, BackingKeySize)) }

func seal(t testing.TB, key *Secret, pt []byte, ec map[string]string) []byte {
	t.Helper()
	h, err := NewHeader(testKeyID, [VersionIDSize]byte{1, 2, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := Seal(key, h, pt, ec)
	if err != nil {
		t.Fatal(err)
	}
	return blob
}

// TestSealFollowsTheSpecification rebuilds each golden blob from DESIGN.md
// with the standard library alone, so the vectors are checked against the
// written format and not only against this package's own output.
func TestSealFollowsTheSpecification(t *testing.T) {
	for _, v := range loadGolden(t).Vectors {
		callKey, err := hkdf.Key(sha256.New, v.BackingKey, v.Salt, "trent/v1/call-key", 32)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := aes.NewCipher(callKey)
		gcm, _ := cipher.NewGCM(block)
		header := append([]byte{0x01, byte(len(v.KeyID))}, v.KeyID...)
		header = append(header, v.VersionID...)
		header = append(header, v.Salt...)
		header = append(header, v.Nonce...)
		aad := append(bytes.Clone(header), CanonicalContext(v.Context)...)
		want := gcm.Seal(header, v.Nonce, v.Plaintext, aad)
		if !bytes.Equal(want, v.Blob) {
			t.Errorf("%s: golden blob is not what the specification gives", v.Name)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := testBackingKey()
	for _, n := range []int{MinPlaintext, 32, MaxPlaintext} {
		for _, ec := range []map[string]string{nil, {"tenant": "acme", "Zürich": "财务"}} {
			pt := bytes.Repeat([]byte{0xab}, n)
			c, err := ParseCiphertext(seal(t, key, pt, ec))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Open(key, c, maps.Clone(ec))
			if err != nil {
				t.Fatalf("%d bytes, context %q: %v", n, ec, err)
			}
			if !bytes.Equal(got.Bytes(), pt) {
				t.Fatalf("%d bytes: plaintext differs", n)
			}
		}
	}
}

func TestSealIsFreshEachCall(t *testing.T) {
	key, pt := testBackingKey(), []byte("same plaintext")
	a, b := seal(t, key, pt, nil), seal(t, key, pt, nil)
	if bytes.Equal(a, b) {
		t.Fatal("two Seal calls gave the same blob")
	}
}

func TestOpenBindsTheContext(t *testing.T) {
	key := testBackingKey()
	ec := map[string]string{"tenant": "acme", "purpose": "backup"}
	c, err := ParseCiphertext(seal(t, key, []byte("secret"), ec))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ec   map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"value changed", map[string]string{"tenant": "evil", "purpose": "backup"}},
		{"key missing", map[string]string{"tenant": "acme"}},
		{"key added", map[string]string{"tenant": "acme", "purpose": "backup", "x": ""}},
		{"key renamed", map[string]string{"Tenant": "acme", "purpose": "backup"}},
		{"value moved into key", map[string]string{"tenantacme": "", "purpose": "backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if pt, err := Open(key, c, tt.ec); pt != nil || !errors.Is(err, ErrDecrypt) {
				t.Fatalf("got %v, %v; want ErrDecrypt", pt, err)
			}
		})
	}
	if _, err := Open(key, c, map[string]string{"purpose": "backup", "tenant": "acme"}); err != nil {
		t.Fatalf("an equal map built in another order must open: %v", err)
	}
}

func TestOpenRejectsEveryFlippedBit(t *testing.T) {
	key, ec := testBackingKey(), map[string]string{"k": "v"}
	blob := seal(t, key, []byte("thirty-two bytes of data key....."), ec)
	for i := range blob {
		for bit := range 8 {
			tampered := bytes.Clone(blob)
			tampered[i] ^= 1 << bit
			err := openBlob(key, tampered, ec)
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformedCiphertext) {
				t.Fatalf("byte %d bit %d flipped: got %v", i, bit, err)
			}
		}
	}
}

func TestOpenRejectsEveryTruncation(t *testing.T) {
	key := testBackingKey()
	blob := seal(t, key, []byte("data"), nil)
	for n := range len(blob) {
		if err := openBlob(key, blob[:n], nil); err == nil {
			t.Fatalf("blob cut to %d of %d bytes opened", n, len(blob))
		}
	}
}

func TestOpenRejectsAnotherKey(t *testing.T) {
	blob := seal(t, testBackingKey(), []byte("data"), nil)
	other := NewSecret(bytes.Repeat([]byte{0x43}, BackingKeySize))
	if err := openBlob(other, blob, nil); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("got %v, want ErrDecrypt", err)
	}
}

func TestOpenRejectsBadArguments(t *testing.T) {
	key := testBackingKey()
	c, _ := ParseCiphertext(seal(t, key, []byte("data"), nil))
	badID := *c
	badID.KeyID = "not/valid"
	short := *c
	short.Sealed = c.Sealed[:TagSize-1]
	tests := []struct {
		name string
		key  *Secret
		c    *Ciphertext
		want error
	}{
		{"nil ciphertext", key, nil, ErrMalformedCiphertext},
		{"invalid key id", key, &badID, ErrMalformedCiphertext},
		{"sealed shorter than tag", key, &short, ErrMalformedCiphertext},
		{"nil key", nil, c, ErrInvalidKey},
		{"short key", NewSecret(make([]byte, 16)), c, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if pt, err := Open(tt.key, tt.c, nil); pt != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", pt, err, tt.want)
			}
		})
	}
}

func TestSealRejectsBadArguments(t *testing.T) {
	key, h := testBackingKey(), testHeader()
	badID := h
	badID.KeyID = "alias/x"
	tests := []struct {
		name string
		key  *Secret
		h    Header
		pt   []byte
		ec   map[string]string
		want error
	}{
		{"empty plaintext", key, h, nil, nil, ErrInvalidLength},
		{"plaintext over the limit", key, h, make([]byte, MaxPlaintext+1), nil, ErrInvalidLength},
		{"invalid context", key, h, []byte("x"), map[string]string{"": "v"}, ErrInvalidContext},
		{"invalid key id", key, badID, []byte("x"), nil, ErrInvalidKeyID},
		{"nil key", nil, h, []byte("x"), nil, ErrInvalidKey},
		{"AES-128 key", NewSecret(make([]byte, 16)), h, []byte("x"), nil, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if blob, err := Seal(tt.key, tt.h, tt.pt, tt.ec); blob != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %x, %v; want %v", blob, err, tt.want)
			}
		})
	}
}

func TestErrorsCarryNoSecrets(t *testing.T) {
	key := NewSecret([]byte("KEYMATERIAL-KEYMATERIAL-KEYMATER"))
	pt := []byte("PLAINTEXT-MARKER")
	blob := seal(t, key, pt, map[string]string{"k": "v"})
	c, _ := ParseCiphertext(blob)
	var errs []error
	_, err := Open(key, c, nil)
	errs = append(errs, err)
	_, err = Open(NewSecret([]byte("KEYMATERIAL")), c, nil)
	errs = append(errs, err)
	_, err = Seal(NewSecret([]byte("KEYMATERIAL")), testHeader(), pt, nil)
	errs = append(errs, err)
	_, err = Seal(key, testHeader(), append(pt, make([]byte, MaxPlaintext)...), nil)
	errs = append(errs, err)
	for _, err := range errs {
		msg := err.Error()
		for _, secret := range []string{"KEYMATERIAL", hex.EncodeToString([]byte("KEYMATERIAL")), "PLAINTEXT", hex.EncodeToString(pt[:8])} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q reveals secret bytes", msg)
			}
		}
	}
}

func TestNewHeader(t *testing.T) {
	a, err := NewHeader(testKeyID, [VersionIDSize]byte{9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewHeader(testKeyID, [VersionIDSize]byte{9}, nil)
	if a.Salt == b.Salt || a.Nonce == b.Nonce {
		t.Fatal("two headers share a salt or a nonce")
	}
	if a.KeyID != testKeyID || a.VersionID != [VersionIDSize]byte{9} {
		t.Fatalf("header %+v lost its key id or version id", a)
	}
	if _, err := NewHeader("bad id", [VersionIDSize]byte{}, nil); !errors.Is(err, ErrInvalidKeyID) {
		t.Fatalf("got %v, want ErrInvalidKeyID", err)
	}
	short := bytes.NewReader(make([]byte, SaltSize+NonceSize-1))
	if _, err := NewHeader(testKeyID, [VersionIDSize]byte{}, short); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want the reader's error", err)
	}
}

func FuzzOpen(f *testing.F) {
	g := loadGolden(f)
	key := g.Vectors[0].BackingKey
	contexts := []map[string]string{nil}
	for _, v := range g.Vectors {
		contexts = append(contexts, v.Context)
	}
	for i, v := range g.Vectors {
		f.Add([]byte(v.Blob), uint8(i+1))
	}
	for _, n := range g.Negative {
		f.Add([]byte(n.Blob), uint8(0))
	}
	// Only an untouched golden blob with its own key and context may open.
	genuine := func(blob []byte, ec map[string]string) bool {
		for _, v := range g.Vectors {
			if bytes.Equal(v.Blob, blob) && bytes.Equal(v.BackingKey, key) && maps.Equal(v.Context, ec) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, blob []byte, ctxIndex uint8) {
		ec := contexts[int(ctxIndex)%len(contexts)]
		c, err := ParseCiphertext(blob)
		if err != nil {
			return
		}
		pt, err := Open(NewSecret(bytes.Clone(key)), c, ec)
		if err == nil && !genuine(blob, ec) {
			t.Fatalf("a forged blob verified: %x", blob)
		}
		if err != nil && (pt != nil || !errors.Is(err, ErrDecrypt)) {
			t.Fatalf("a well-formed blob failed with %v, want ErrDecrypt and no plaintext", err)
		}
	})
}

func BenchmarkSeal32(b *testing.B) {
	key, pt := testBackingKey(), make([]byte, 32)
	ec := map[string]string{"tenant": "acme", "purpose": "data-key"}
	h, err := NewHeader(testKeyID, [VersionIDSize]byte{1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Seal(key, h, pt, ec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen32(b *testing.B) {
	key := testBackingKey()
	ec := map[string]string{"tenant": "acme", "purpose": "data-key"}
	c, err := ParseCiphertext(seal(b, key, make([]byte, 32), ec))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		pt, err := Open(key, c, ec)
		if err != nil {
			b.Fatal(err)
		}
		pt.Zero()
	}
}

// BenchmarkEncrypt32 is the whole hot path: fresh header, then Seal.
func BenchmarkEncrypt32(b *testing.B) {
	key, pt := testBackingKey(), make([]byte, 32)
	ec := map[string]string{"tenant": "acme", "purpose": "data-key"}
	b.ReportAllocs()
	for b.Loop() {
		h, err := NewHeader(testKeyID, [VersionIDSize]byte{1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Seal(key, h, pt, ec); err != nil {
			b.Fatal(err)
		}
	}
}

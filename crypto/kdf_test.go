package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func TestDeriveCallKeyMatchesStandardLibraryHKDF(t *testing.T) {
	for range 200 {
		backing, salt := make([]byte, BackingKeySize), make([]byte, SaltSize)
		rand.Read(backing)
		rand.Read(salt)
		want, err := hkdf.Key(sha256.New, backing, salt, "trent/v1/call-key", 32)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DeriveCallKey(NewSecret(backing), salt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("DeriveCallKey differs from crypto/hkdf for key %x salt %x", backing, salt)
		}
	}
}

func TestDeriveCallKeySeparatesSalts(t *testing.T) {
	backing := NewSecret(bytes.Repeat([]byte{7}, BackingKeySize))
	a, _ := DeriveCallKey(backing, make([]byte, SaltSize))
	salt := make([]byte, SaltSize)
	salt[SaltSize-1] = 1
	b, _ := DeriveCallKey(backing, salt)
	if bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("different salts gave the same call key")
	}
}

func TestDeriveCallKeyRejectsBadInput(t *testing.T) {
	good := NewSecret(make([]byte, BackingKeySize))
	tests := []struct {
		name string
		key  *Secret
		salt []byte
		want error
	}{
		{"nil key", nil, make([]byte, SaltSize), ErrInvalidKey},
		{"AES-128 key", NewSecret(make([]byte, 16)), make([]byte, SaltSize), ErrInvalidKey},
		{"short salt", good, make([]byte, SaltSize-1), ErrInvalidLength},
		{"long salt", good, make([]byte, SaltSize+1), ErrInvalidLength},
		{"nil salt", good, nil, ErrInvalidLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := DeriveCallKey(tt.key, tt.salt)
			if k != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", k, err, tt.want)
			}
		})
	}
}

func BenchmarkDeriveCallKey(b *testing.B) {
	backing, salt := NewSecret(make([]byte, BackingKeySize)), make([]byte, SaltSize)
	var k [BackingKeySize]byte
	b.ReportAllocs()
	for b.Loop() {
		if err := deriveCallKey(&k, backing, salt); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHMACMatchesStandardLibraryAtEverySize(t *testing.T) {
	for keyLen := range sha256.BlockSize + 10 {
		for msgLen := range hmacMaxMessage + 10 {
			key, msg := make([]byte, keyLen), make([]byte, msgLen)
			rand.Read(key)
			rand.Read(msg)
			h := hmac.New(sha256.New, key)
			h.Write(msg)
			var got [sha256.Size]byte
			hmacSHA256(&got, key, msg)
			if want := h.Sum(nil); !bytes.Equal(got[:], want) {
				t.Fatalf("key %d bytes, message %d bytes: %x, want %x", keyLen, msgLen, got, want)
			}
		}
	}
}

// TestHKDFStepsMatchRFC5869 checks the two HMAC steps of the derivation
// against RFC 5869, test case 3 (SHA-256, empty salt and info): its PRK,
// and the first 32 bytes of its OKM.
func TestHKDFStepsMatchRFC5869(t *testing.T) {
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	var prk, okm [sha256.Size]byte
	hmacSHA256(&prk, nil, ikm)
	hmacSHA256(&okm, prk[:], []byte{1})
	if got, want := hex.EncodeToString(prk[:]), "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"; got != want {
		t.Errorf("PRK %s, want %s", got, want)
	}
	if got, want := hex.EncodeToString(okm[:]), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"; got != want {
		t.Errorf("OKM %s, want %s", got, want)
	}
}

func TestDeriveCallKeyAllocatesNothing(t *testing.T) {
	backing, salt := NewSecret(make([]byte, BackingKeySize)), make([]byte, SaltSize)
	var k [BackingKeySize]byte
	if n := testing.AllocsPerRun(100, func() { _ = deriveCallKey(&k, backing, salt) }); n != 0 {
		t.Errorf("deriveCallKey allocates %v objects a call, want 0", n)
	}
}

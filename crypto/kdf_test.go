package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
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

package soft

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/keycache"
)

func openForTest(t *testing.T, dir string, secret *crypto.Secret, cacheSize int) *Backend {
	t.Helper()
	b, err := Open(context.Background(), Config{Dir: dir, UnsealSecret: secret, KeyCacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// No key material may be on disk in the clear: scan the store for every
// domain key, the transport private key in several encodings, and the
// unseal secret.
func TestStoreHoldsNoKeyMaterialInTheClear(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	secret, err := GenerateUnsealSecret()
	if err != nil {
		t.Fatal(err)
	}
	b := openForTest(t, dir, secret, 0)
	for _, id := range []string{"dk-a", "dk-b", "dk-c"} {
		if err := b.CreateDomainKey(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.TransportPublicKey(ctx); err != nil {
		t.Fatal(err)
	}
	needles := map[string][]byte{"unseal secret": secret.Bytes()}
	for id, dk := range b.domainKeys {
		needles["domain key "+id] = bytes.Clone(dk.secret.Bytes())
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(b.transport)
	if err != nil {
		t.Fatal(err)
	}
	needles["transport key PKCS#8"] = pkcs8
	needles["transport key PKCS#1"] = x509.MarshalPKCS1PrivateKey(b.transport)
	needles["transport key D"] = b.transport.D.Bytes()
	needles["transport key P"] = b.transport.Primes[0].Bytes()
	needles["transport key Q"] = b.transport.Primes[1].Bytes()

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != storeFileName {
		t.Fatalf("key store dir holds %v, want only %s", entries, storeFileName)
	}
	path := filepath.Join(dir, storeFileName)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v, want 0600", info.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, needle := range needles {
		// Any 16-byte window of a secret is enough to count as a leak.
		for i := 0; i+16 <= len(needle); i += 8 {
			if bytes.Contains(raw, needle[i:i+16]) {
				t.Errorf("store file contains %s in the clear", name)
				break
			}
		}
	}
}

func TestStoreDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	secret, _ := GenerateUnsealSecret()
	b := openForTest(t, dir, secret, 0)
	if err := b.CreateDomainKey(context.Background(), "dk"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	path := filepath.Join(dir, storeFileName)
	raw, _ := os.ReadFile(path)
	for _, i := range []int{8, storeHeaderSize, len(raw) - 1} { // salt, nonce, tag
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), Config{Dir: dir, UnsealSecret: secret}); !errors.Is(err, hsm.ErrSealed) {
			t.Errorf("byte %d flipped: err = %v, want ErrSealed", i, err)
		}
	}
}

func TestEvictedAndClosedKeysAreZeroed(t *testing.T) {
	ctx := context.Background()
	secret, _ := GenerateUnsealSecret()
	b := openForTest(t, t.TempDir(), secret, 1)
	if err := b.CreateDomainKey(ctx, "dk"); err != nil {
		t.Fatal(err)
	}
	tokenA, _ := b.GenerateKeyToken(ctx, "dk")
	tokenB, _ := b.GenerateKeyToken(ctx, "dk")
	salt, nonce := make([]byte, hsm.SaltSize), make([]byte, hsm.NonceSize)
	seal := func(token []byte) {
		if _, err := b.Seal(ctx, "dk", token, salt, nonce, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
	cached := func(token []byte) *crypto.Secret {
		e, ok := b.backingKeys.Get(keycache.KeyFor("dk", token))
		if !ok {
			t.Fatal("backing key not cached")
		}
		b.releaseBackingKey(e)
		return e.Value()
	}
	seal(tokenA)
	keyA := cached(tokenA)
	seal(tokenB) // evicts A from the one-entry cache
	if !bytes.Equal(keyA.Bytes(), make([]byte, hsm.BackingKeySize)) {
		t.Error("evicted backing key was not zeroed")
	}
	keyB := cached(tokenB)
	dk := b.domainKeys["dk"].secret
	b.Close()
	if !bytes.Equal(keyB.Bytes(), make([]byte, hsm.BackingKeySize)) {
		t.Error("cached backing key not zeroed by Close")
	}
	if !bytes.Equal(dk.Bytes(), make([]byte, hsm.DomainKeySize)) {
		t.Error("domain key not zeroed by Close")
	}
}

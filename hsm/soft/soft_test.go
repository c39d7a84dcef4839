package soft_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/hsmtest"
	"github.com/trent-kms/trent/hsm/soft"
)

func TestConformance(t *testing.T) {
	hsmtest.RunConformance(t, func(t *testing.T) hsm.Backend { return hsmtest.OpenSoftware(t) })
}

func newSecret(t *testing.T) *crypto.Secret {
	t.Helper()
	s, err := soft.GenerateUnsealSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t *testing.T, dir string, secret *crypto.Secret) *soft.Backend {
	t.Helper()
	b, err := soft.Open(context.Background(), soft.Config{Dir: dir, UnsealSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestReopenWithSameSecretKeepsKeys(t *testing.T) {
	ctx := context.Background()
	dir, secret := t.TempDir(), newSecret(t)
	first := open(t, dir, secret)
	for _, id := range []string{"dk-1", "dk-2"} {
		if err := first.CreateDomainKey(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := first.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	token, err := first.GenerateKeyToken(ctx, "dk-2")
	if err != nil {
		t.Fatal(err)
	}
	key, err := first.UnwrapKeyToken(ctx, "dk-2", token)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := open(t, dir, secret)
	for _, id := range []string{"dk-1", "dk-2"} {
		if has, err := second.HasDomainKey(ctx, id); err != nil || !has {
			t.Fatalf("HasDomainKey(%s) after reopen = %v, %v", id, has, err)
		}
	}
	again, err := second.UnwrapKeyToken(ctx, "dk-2", token)
	if err != nil || !bytes.Equal(again.Bytes(), key.Bytes()) {
		t.Fatalf("token unwraps differently after reopen: %v", err)
	}
	if pub2, err := second.TransportPublicKey(ctx); err != nil || !bytes.Equal(pub, pub2) {
		t.Fatalf("transport key changed after reopen: %v", err)
	}
}

func TestWrongSecretIsSealed(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, newSecret(t))
	if err := b.CreateDomainKey(context.Background(), "dk"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	_, err := soft.Open(context.Background(), soft.Config{Dir: dir, UnsealSecret: newSecret(t)})
	if !errors.Is(err, hsm.ErrSealed) {
		t.Fatalf("Open with another secret: err = %v, want ErrSealed", err)
	}
}

// An empty store is written at once, so even before any key exists a second
// secret cannot take the directory over.
func TestNewStoreBindsTheSecret(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, newSecret(t)).Close()
	_, err := soft.Open(context.Background(), soft.Config{Dir: dir, UnsealSecret: newSecret(t)})
	if !errors.Is(err, hsm.ErrSealed) {
		t.Fatalf("err = %v, want ErrSealed", err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := soft.Open(ctx, soft.Config{UnsealSecret: newSecret(t)}); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("no dir: err = %v", err)
	}
	short := crypto.NewSecret(make([]byte, soft.MinUnsealSecretSize-1))
	if _, err := soft.Open(ctx, soft.Config{Dir: t.TempDir(), UnsealSecret: short}); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("short secret: err = %v", err)
	}
	if _, err := soft.Open(ctx, soft.Config{Dir: t.TempDir()}); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("no secret: err = %v", err)
	}
	notAStore := t.TempDir()
	if err := os.WriteFile(filepath.Join(notAStore, "keystore.sealed"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := soft.Open(ctx, soft.Config{Dir: notAStore, UnsealSecret: newSecret(t)}); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("foreign file: err = %v", err)
	}
}

func TestUnsealSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "unseal.key")
	secret := newSecret(t)
	if err := soft.WriteUnsealSecretFile(path, secret); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	back, err := soft.ReadUnsealSecretFile(path)
	if err != nil || !bytes.Equal(back.Bytes(), secret.Bytes()) {
		t.Fatalf("read back: %v", err)
	}
	if err := soft.WriteUnsealSecretFile(path, newSecret(t)); !errors.Is(err, hsm.ErrExists) {
		t.Fatalf("overwrite: err = %v, want ErrExists", err)
	}
	if again, _ := soft.ReadUnsealSecretFile(path); !bytes.Equal(again.Bytes(), secret.Bytes()) {
		t.Fatal("refused overwrite still changed the file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the secret file", len(entries))
	}

	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("zz-secret-looking-text"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = soft.ReadUnsealSecretFile(garbage)
	if !errors.Is(err, hsm.ErrInvalidInput) || strings.Contains(err.Error(), "secret-looking") {
		t.Fatalf("garbage: err = %v", err)
	}
}

func TestLoadOrCreateUnsealSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "unseal.key")
	created, isNew, err := soft.LoadOrCreateUnsealSecretFile(path)
	if err != nil || !isNew || created.Len() != soft.UnsealSecretSize {
		t.Fatalf("first call: new=%v len=%d err=%v", isNew, created.Len(), err)
	}
	loaded, isNew, err := soft.LoadOrCreateUnsealSecretFile(path)
	if err != nil || isNew || !bytes.Equal(loaded.Bytes(), created.Bytes()) {
		t.Fatalf("second call: new=%v err=%v", isNew, err)
	}
}

func BenchmarkSoftware(b *testing.B) {
	hsmtest.RunBenchmarks(b, hsmtest.OpenSoftware(b))
}

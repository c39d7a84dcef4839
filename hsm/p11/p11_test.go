//go:build cgo

package p11_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/hsmtest"
	"github.com/trent-kms/trent/hsm/p11"
)

func TestConformance(t *testing.T) {
	hsmtest.RunConformance(t, func(t *testing.T) hsm.Backend { return hsmtest.OpenSoftHSM(t) })
}

func open(t *testing.T, cfg p11.Config) *p11.Backend {
	t.Helper()
	b, err := p11.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestReopenKeepsKeys(t *testing.T) {
	ctx := context.Background()
	cfg := hsmtest.NewSoftHSMToken(t)
	first := open(t, cfg)
	if err := first.CreateDomainKey(ctx, "dk-1"); err != nil {
		t.Fatal(err)
	}
	pub, err := first.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	token, err := first.GenerateKeyToken(ctx, "dk-1")
	if err != nil {
		t.Fatal(err)
	}
	key, err := first.UnwrapKeyToken(ctx, "dk-1", token)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := open(t, cfg)
	if has, err := second.HasDomainKey(ctx, "dk-1"); err != nil || !has {
		t.Fatalf("HasDomainKey after reopen = %v, %v", has, err)
	}
	again, err := second.UnwrapKeyToken(ctx, "dk-1", token)
	if err != nil || !bytes.Equal(again.Bytes(), key.Bytes()) {
		t.Fatalf("token unwraps differently after reopen: %v", err)
	}
	if pub2, err := second.TransportPublicKey(ctx); err != nil || !bytes.Equal(pub, pub2) {
		t.Fatalf("transport key changed after reopen: %v", err)
	}
}

// The PIN must not reach errors or logs, whether it is right or wrong.
func TestPINNeverInErrorsOrLogs(t *testing.T) {
	cfg := hsmtest.NewSoftHSMToken(t)
	rightPIN, err := os.ReadFile(cfg.PINFile)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	wrongPIN := "wrong-pin-7f3a9c"
	wrong := cfg
	wrong.PINFile = filepath.Join(t.TempDir(), "wrong.pin")
	if err := os.WriteFile(wrong.PINFile, []byte(wrongPIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = p11.Open(context.Background(), wrong)
	if !errors.Is(err, hsm.ErrSealed) || hsm.IsRetryable(err) {
		t.Fatalf("Open with a wrong PIN: err = %v, want non-retryable ErrSealed", err)
	}
	var typed *hsm.Error
	if !errors.As(err, &typed) || typed.Code != "CKR_PIN_INCORRECT" {
		t.Errorf("wrong PIN error %v lacks code CKR_PIN_INCORRECT", err)
	}
	b := open(t, cfg)
	b.Close()
	for _, pin := range []string{wrongPIN, strings.TrimSpace(string(rightPIN))} {
		if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), pin) {
			t.Errorf("error reveals a PIN: %v", err)
		}
		if strings.Contains(logs.String(), pin) {
			t.Errorf("logs reveal a PIN: %s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "token opened") {
		t.Errorf("no open event logged: %s", logs.String())
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	cfg := hsmtest.NewSoftHSMToken(t)
	missingPIN := cfg
	missingPIN.PINFile = filepath.Join(t.TempDir(), "absent")
	emptyPIN := cfg
	emptyPIN.PINFile = filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyPIN.PINFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownToken := cfg
	unknownToken.TokenLabel = "no-such-token"
	longLabel := cfg
	longLabel.TokenLabel = strings.Repeat("x", 33)
	badLibrary := cfg
	badLibrary.Library = filepath.Join(t.TempDir(), "missing.so")
	for _, c := range []struct {
		name string
		cfg  p11.Config
		want error
	}{
		{"missing PIN file", missingPIN, hsm.ErrInvalidInput},
		{"empty PIN file", emptyPIN, hsm.ErrInvalidInput},
		{"unknown token", unknownToken, hsm.ErrUnavailable},
		{"label over 32 bytes", longLabel, hsm.ErrInvalidInput},
		{"missing library", badLibrary, hsm.ErrUnavailable},
	} {
		if _, err := p11.Open(context.Background(), c.cfg); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestPoolWaitHonoursContext(t *testing.T) {
	cfg := hsmtest.NewSoftHSMToken(t)
	cfg.PoolSize = 1
	b := open(t, cfg)
	release, err := p11.HoldSessionForTest(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = b.GenerateRandom(ctx, 8)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the only session taken: err = %v, want DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waited %v for a 50ms deadline", waited)
	}
	release()
	if _, err := b.GenerateRandom(context.Background(), 8); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// After the device drops every session, one call fails retryably and the
// pool then recovers all of them; handles from the lost sessions (cached
// backing keys, and on SoftHSM even token-object handles) are not reused.
func TestRecoversFromLostSessions(t *testing.T) {
	ctx := context.Background()
	b := open(t, hsmtest.NewSoftHSMToken(t))
	if err := b.CreateDomainKey(ctx, "dk"); err != nil {
		t.Fatal(err)
	}
	token, err := b.GenerateKeyToken(ctx, "dk")
	if err != nil {
		t.Fatal(err)
	}
	salt, nonce := make([]byte, hsm.SaltSize), make([]byte, hsm.NonceSize)
	sealed, err := b.Seal(ctx, "dk", token, salt, nonce, []byte("before"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p11.CloseSessionsBehindPoolForTest(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err = b.Open(ctx, "dk", token, salt, nonce, sealed, nil)
	if !errors.Is(err, hsm.ErrUnavailable) || !hsm.IsRetryable(err) {
		t.Fatalf("first call on a lost session: err = %v, want retryable ErrUnavailable", err)
	}
	for i := range 2 * p11.DefaultPoolSize { // the pool lends sessions in turn
		opened, err := b.Open(ctx, "dk", token, salt, nonce, sealed, nil)
		if err != nil || string(opened.Bytes()) != "before" {
			t.Fatalf("call %d after recovery: %q, %v", i, opened.Bytes(), err)
		}
	}
}

// Session objects must not accumulate: each call destroys what it creates
// and the backing-key cache stays within its bound under contention.
func TestSessionObjectsStayBounded(t *testing.T) {
	ctx := context.Background()
	cfg := hsmtest.NewSoftHSMToken(t)
	cfg.KeyCacheSize = 2
	b := open(t, cfg)
	if err := b.CreateDomainKey(ctx, "dk"); err != nil {
		t.Fatal(err)
	}
	tokens := make([][]byte, 5)
	for i := range tokens {
		var err error
		if tokens[i], err = b.GenerateKeyToken(ctx, "dk"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.UnwrapKeyToken(ctx, "dk", tokens[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			salt, nonce := make([]byte, hsm.SaltSize), make([]byte, hsm.NonceSize)
			_, _ = rand.Read(salt)
			for i := range 20 {
				token := tokens[(g+i)%len(tokens)]
				sealed, err := b.Seal(ctx, "dk", token, salt, nonce, []byte("x"), nil)
				if err == nil {
					_, err = b.Open(ctx, "dk", token, salt, nonce, sealed, nil)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n, err := p11.SessionObjectCountForTest(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if n > cfg.KeyCacheSize {
		t.Fatalf("%d session objects remain; the cache allows %d", n, cfg.KeyCacheSize)
	}
}

// Export, import and signing work on session objects that must all be
// gone when the call returns, whether it succeeds or not.
func TestKeyTransferAndSigningLeaveNoSessionObjects(t *testing.T) {
	ctx := context.Background()
	b := open(t, hsmtest.NewSoftHSMToken(t))
	for _, id := range []string{"dk", "other"} {
		if err := b.CreateDomainKey(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := b.TransportPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	token, err := b.GenerateKeyToken(ctx, "dk")
	if err != nil {
		t.Fatal(err)
	}
	signingToken, _, err := b.GenerateSigningKeyToken(ctx, "dk")
	if err != nil {
		t.Fatal(err)
	}
	refs := []hsm.KeyTokenRef{{DomainKeyID: "dk", Token: token}, {DomainKeyID: "dk", Token: token}}
	sessionKey, batch, err := b.ExportKeyTokens(ctx, pub, refs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImportKeyTokens(ctx, "other", sessionKey, batch); err != nil {
		t.Fatal(err)
	}
	digest := make([]byte, hsm.DigestSize)
	if _, err := b.SignWithKeyToken(ctx, "dk", signingToken, digest); err != nil {
		t.Fatal(err)
	}
	failures := []error{
		func() error {
			corrupt := bytes.Clone(sessionKey)
			corrupt[10] ^= 1
			_, err := b.ImportKeyTokens(ctx, "other", corrupt, batch)
			return err
		}(),
		func() error { _, err := b.SignWithKeyToken(ctx, "other", signingToken, digest); return err }(),
		func() error {
			_, _, err := b.ExportKeyTokens(ctx, pub, append(refs, hsm.KeyTokenRef{DomainKeyID: "other", Token: token}))
			return err
		}(),
		func() error {
			bad := [][]byte{batch[0], bytes.Clone(batch[1])}
			bad[1][5] ^= 1
			_, err := b.ImportKeyTokens(ctx, "other", sessionKey, bad)
			return err
		}(),
	}
	for i, err := range failures {
		if !errors.Is(err, hsm.ErrDecrypt) {
			t.Errorf("failing call %d: err = %v, want ErrDecrypt", i, err)
		}
	}
	n, err := p11.SessionObjectCountForTest(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d session objects remain", n)
	}
}

func BenchmarkSoftHSM(b *testing.B) {
	hsmtest.RunBenchmarks(b, hsmtest.OpenSoftHSM(b))
}

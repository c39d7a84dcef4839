package hsmtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trent-kms/trent/hsm"
)

// RunConformance runs the behaviour every hsm.Backend must show.
// newBackend returns a fresh backend with no keys and arranges for it to be
// closed when the test ends (t.Cleanup); Close must tolerate a second call.
func RunConformance(t *testing.T, newBackend func(t *testing.T) hsm.Backend) {
	t.Run("DomainKeyLifecycle", func(t *testing.T) { testDomainKeyLifecycle(t, newBackend(t)) })
	t.Run("ConcurrentCreateDomainKey", func(t *testing.T) { testConcurrentCreateDomainKey(t, newBackend(t)) })
	t.Run("KeyToken", func(t *testing.T) { testKeyToken(t, newBackend(t)) })
	t.Run("KeyTokenUnderOtherDomainKey", func(t *testing.T) { testKeyTokenUnderOtherDomainKey(t, newBackend(t)) })
	t.Run("KeyTokenTampered", func(t *testing.T) { testKeyTokenTampered(t, newBackend(t)) })
	t.Run("SealOpen", func(t *testing.T) { testSealOpen(t, newBackend(t)) })
	t.Run("OpenRejectsDamage", func(t *testing.T) { testOpenRejectsDamage(t, newBackend(t)) })
	t.Run("SealMatchesContract", func(t *testing.T) { testSealMatchesContract(t, newBackend(t)) })
	t.Run("DomainKeyTransfer", func(t *testing.T) { CheckDomainKeyTransfer(t, newBackend(t), newBackend(t)) })
	t.Run("DomainKeyTransferErrors", func(t *testing.T) { testTransferErrors(t, newBackend(t), newBackend(t)) })
	t.Run("KeyTokenBatchTransfer", func(t *testing.T) { CheckKeyTokenBatchTransfer(t, newBackend(t), newBackend(t)) })
	t.Run("KeyTokenBatchTransferErrors", func(t *testing.T) { testKeyTokenBatchTransferErrors(t, newBackend(t), newBackend(t)) })
	t.Run("SigningKeyToken", func(t *testing.T) { testSigningKeyToken(t, newBackend(t)) })
	t.Run("SigningKeyTokenSharedInRegion", func(t *testing.T) { CheckSigningKeyTokenSharing(t, newBackend(t), newBackend(t)) })
	t.Run("GenerateRandom", func(t *testing.T) { testGenerateRandom(t, newBackend(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newBackend(t)) })
	t.Run("CancelledContext", func(t *testing.T) { testCancelledContext(t, newBackend(t)) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, newBackend(t)) })
}

var idCounter atomic.Int64

// uniqueID returns a domain key id unused by earlier calls in this process.
func uniqueID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, idCounter.Add(1)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantErr checks that err matches sentinel and is a typed *hsm.Error.
func wantErr(t *testing.T, err, sentinel error, what string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: err = %v, want %v", what, err, sentinel)
		return
	}
	var typed *hsm.Error
	if !errors.As(err, &typed) || typed.Op == "" {
		t.Errorf("%s: err %v is not an *hsm.Error naming its operation", what, err)
	}
}

// must(call())(t) returns call's value, failing the test on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newDomainKey(t *testing.T, b hsm.Backend) string {
	t.Helper()
	id := uniqueID("dk")
	if err := b.CreateDomainKey(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	return id
}

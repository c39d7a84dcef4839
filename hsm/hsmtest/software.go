package hsmtest

import (
	"context"
	"testing"

	"github.com/trent-kms/trent/hsm/soft"
)

// OpenSoftware opens a software HSM with a fresh key store under
// tb.TempDir(), closed when the test ends.
func OpenSoftware(tb testing.TB) *soft.Backend {
	tb.Helper()
	secret, err := soft.GenerateUnsealSecret()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := soft.Open(context.Background(), soft.Config{Dir: tb.TempDir(), UnsealSecret: secret})
	if err != nil {
		tb.Fatalf("hsmtest: open software HSM: %v", err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

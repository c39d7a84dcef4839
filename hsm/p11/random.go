//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// GenerateRandom implements hsm.Backend.
func (b *Backend) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	const op = "generate random"
	if err := validate.RandomLength(n); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	var out []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		var err error
		out, err = b.p11.GenerateRandom(s, n)
		if err == nil && len(out) != n {
			return typedError(op, hsm.ErrUnavailable, "device returned %d of %d random bytes", len(out), n)
		}
		return deviceError(op, err)
	})
	return out, err
}

package soft

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// GenerateRandom implements hsm.Backend.
func (b *Backend) GenerateRandom(ctx context.Context, n int) ([]byte, error) {
	const op = "generate random"
	if err := validate.RandomLength(n); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	out := make([]byte, n)
	if _, err := rand.Read(out); err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	return out, nil
}

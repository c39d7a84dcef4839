package soft

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// GenerateKeyToken implements hsm.Backend.
func (b *Backend) GenerateKeyToken(ctx context.Context, dkID string) ([]byte, error) {
	const op = "generate key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	dk, err := b.domainKeyLocked(op, dkID)
	if err != nil {
		return nil, err
	}
	key := make([]byte, hsm.BackingKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	token, err := wrapKeyPadded(dk.block, key)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	return token, nil
}

// UnwrapKeyToken implements hsm.Backend.
func (b *Backend) UnwrapKeyToken(ctx context.Context, dkID string, token []byte) (*crypto.Secret, error) {
	const op = "unwrap key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.KeyToken(token); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	return b.unwrapLocked(op, dkID, token)
}

// unwrapLocked unwraps token under dkID; mu must be read-locked.
func (b *Backend) unwrapLocked(op, dkID string, token []byte) (*crypto.Secret, error) {
	dk, err := b.domainKeyLocked(op, dkID)
	if err != nil {
		return nil, err
	}
	key, err := unwrapKeyPadded(dk.block, token)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: key token", hsm.ErrDecrypt)}
	}
	if len(key) != hsm.BackingKeySize {
		clear(key)
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: key token does not hold a %d-byte key", hsm.ErrInvalidInput, hsm.BackingKeySize)}
	}
	return crypto.NewSecret(key), nil
}

package soft

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// CreateDomainKey implements hsm.Backend.
func (b *Backend) CreateDomainKey(ctx context.Context, id string) error {
	const op = "create domain key"
	if err := validate.DomainKeyID(id); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	key := make([]byte, hsm.DomainKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	if err := b.addDomainKey(ctx, op, id, key, false); err != nil {
		return err
	}
	b.log.Info("hsm: domain key created", "id", id)
	return nil
}

// HasDomainKey implements hsm.Backend.
func (b *Backend) HasDomainKey(ctx context.Context, id string) (bool, error) {
	const op = "has domain key"
	if err := validate.DomainKeyID(id); err != nil {
		return false, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return false, err
	}
	defer b.mu.RUnlock()
	_, ok := b.domainKeys[id]
	return ok, nil
}

// addDomainKey stores key under id, persisting before it becomes visible.
// An existing id is ErrExists, or a no-op when existingOK.
func (b *Backend) addDomainKey(ctx context.Context, op, id string, key []byte, existingOK bool) error {
	if err := ctx.Err(); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	dk, err := newDomainKey(key)
	if err != nil {
		return &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrInvalidInput, err)}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		dk.secret.Zero()
		return &hsm.Error{Op: op, Err: fmt.Errorf("%w: backend closed", hsm.ErrUnavailable)}
	}
	if _, exists := b.domainKeys[id]; exists {
		dk.secret.Zero()
		if existingOK {
			return nil
		}
		return &hsm.Error{Op: op, Err: fmt.Errorf("%w: domain key %q", hsm.ErrExists, id)}
	}
	b.domainKeys[id] = dk
	if err := b.persistLocked(); err != nil {
		delete(b.domainKeys, id)
		dk.secret.Zero()
		return &hsm.Error{Op: op, Err: err}
	}
	return nil
}

// persistLocked writes the current keys; mu must be write-locked.
func (b *Backend) persistLocked() error {
	contents, err := b.contentsLocked()
	if err != nil {
		return fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)
	}
	defer contents.zero()
	return b.store.save(contents)
}

// domainKey returns domain key id; mu must be read-locked.
func (b *Backend) domainKeyLocked(op, id string) (*domainKey, error) {
	dk, ok := b.domainKeys[id]
	if !ok {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: domain key %q", hsm.ErrNotFound, id)}
	}
	return dk, nil
}

package soft

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"fmt"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// ExportKeyToken implements hsm.Backend. The transport wrapping is the one
// ExportDomainKey uses (RSA-OAEP, SHA-1), so the PKCS#11 backend can import
// what this one exports and the other way round.
func (b *Backend) ExportKeyToken(ctx context.Context, dkID string, token, peerPublicKey []byte) ([]byte, error) {
	const op = "export key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.KeyToken(token); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	peer, err := validate.PeerTransportKey(peerPublicKey)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	key, err := b.unwrapLocked(op, dkID, token)
	if err != nil {
		return nil, err
	}
	defer key.Zero()
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, peer, key.Bytes(), nil)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrInvalidInput, err)}
	}
	return wrapped, nil
}

// ImportKeyToken implements hsm.Backend.
func (b *Backend) ImportKeyToken(ctx context.Context, dkID string, wrapped []byte) ([]byte, error) {
	const op = "import key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.WrappedBackingKey(wrapped); err != nil {
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
	if b.transport == nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: no transport key pair yet", hsm.ErrNotFound)}
	}
	key, err := rsa.DecryptOAEP(sha1.New(), nil, b.transport, wrapped, nil)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: wrapped backing key", hsm.ErrDecrypt)}
	}
	defer clear(key)
	if len(key) != hsm.BackingKeySize {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: unwrapped key is not %d bytes", hsm.ErrInvalidInput, hsm.BackingKeySize)}
	}
	token, err := wrapKeyPadded(dk.block, key)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	return token, nil
}

package soft

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"fmt"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// ExportKeyTokens implements hsm.Backend: one RSA-OAEP wrap (wrapToPeer,
// as for domain keys) of a fresh AES-256 session key, and each backing key
// under the session key with RFC 5649, which is what the PKCS#11 backend's
// CKM_AES_KEY_WRAP_PAD produces.
func (b *Backend) ExportKeyTokens(ctx context.Context, peerPublicKey []byte, tokens []hsm.KeyTokenRef) ([]byte, [][]byte, error) {
	const op = "export key tokens"
	if err := validate.KeyTokenRefs(tokens); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: err}
	}
	peer, err := validate.PeerTransportKey(peerPublicKey)
	if err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return nil, nil, err
	}
	defer b.mu.RUnlock()
	sessionKey := make([]byte, hsm.BackingKeySize)
	defer clear(sessionKey)
	if _, err := rand.Read(sessionKey); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	block, err := aes.NewCipher(sessionKey)
	if err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	wrapped := make([][]byte, len(tokens))
	for i, ref := range tokens {
		if err := ctx.Err(); err != nil {
			return nil, nil, &hsm.Error{Op: op, Err: err}
		}
		key, err := b.unwrapLocked(op, ref.DomainKeyID, ref.Token)
		if err != nil {
			return nil, nil, keyError(err, i)
		}
		wrapped[i], err = wrapKeyPadded(block, key.Bytes())
		key.Zero()
		if err != nil {
			return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
		}
	}
	sealedSessionKey, err := wrapToPeer(op, peer, sessionKey)
	if err != nil {
		return nil, nil, err
	}
	return sealedSessionKey, wrapped, nil
}

// ImportKeyTokens implements hsm.Backend.
func (b *Backend) ImportKeyTokens(ctx context.Context, dkID string, sessionKey []byte, wrapped [][]byte) ([][]byte, error) {
	const op = "import key tokens"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.WrappedSessionKey(sessionKey); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.BatchWrappedKeys(wrapped); err != nil {
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
	key, err := unwrapFromPeer(op, b.transport, "session key", sessionKey, hsm.BackingKeySize)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	tokens := make([][]byte, len(wrapped))
	for i, w := range wrapped {
		if err := ctx.Err(); err != nil {
			return nil, &hsm.Error{Op: op, Err: err}
		}
		backing, err := unwrapKeyPadded(block, w)
		if err != nil {
			return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: wrapped key %d", hsm.ErrDecrypt, i)}
		}
		if len(backing) != hsm.BackingKeySize {
			clear(backing)
			return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: wrapped key %d is not a %d-byte key", hsm.ErrInvalidInput, i, hsm.BackingKeySize)}
		}
		tokens[i], err = wrapKeyPadded(dk.block, backing)
		clear(backing)
		if err != nil {
			return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
		}
	}
	return tokens, nil
}

// keyError says which key of a batch an *hsm.Error is about.
func keyError(err error, i int) error {
	if typed, ok := err.(*hsm.Error); ok {
		return &hsm.Error{Op: typed.Op, Code: typed.Code, Retryable: typed.Retryable, Err: fmt.Errorf("key %d: %w", i, typed.Err)}
	}
	return fmt.Errorf("key %d: %w", i, err)
}

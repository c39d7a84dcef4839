//go:build cgo

package p11

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// ExportKeyTokens implements hsm.Backend. The session key is a session
// object generated in the device, and each backing key goes from its token
// to the session key's wrapping as a sensitive session object, so no key
// value is ever in this process. All the work runs on one pooled session.
func (b *Backend) ExportKeyTokens(ctx context.Context, peerPublicKey []byte, tokens []hsm.KeyTokenRef) ([]byte, [][]byte, error) {
	const op = "export key tokens"
	if err := validate.KeyTokenRefs(tokens); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: err}
	}
	peer, err := validate.PeerTransportKey(peerPublicKey)
	if err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: err}
	}
	var sessionKey []byte
	var wrapped [][]byte
	err = b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		sk, err := b.p11.GenerateKey(s, mechanism(pkcs11.CKM_AES_KEY_GEN, nil), newSessionKeyTemplate())
		if err != nil {
			return deviceError(op, err)
		}
		defer b.destroy(s, sk)
		out := make([][]byte, len(tokens))
		for i, ref := range tokens {
			if err := ctx.Err(); err != nil {
				return &hsm.Error{Op: op, Err: err}
			}
			if out[i], err = b.rewrapToSessionKey(s, op, ref, sk); err != nil {
				return keyError(err, i)
			}
		}
		sessionKey, err = b.wrapToPeer(s, op, peer, sk)
		if err != nil {
			return err
		}
		wrapped = out
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return sessionKey, wrapped, nil
}

// rewrapToSessionKey unwraps one key token into a transit session object
// and wraps it under the session key sk.
func (b *Backend) rewrapToSessionKey(s pkcs11.SessionHandle, op string, ref hsm.KeyTokenRef, sk pkcs11.ObjectHandle) ([]byte, error) {
	dk, err := b.domainKey(s, op, ref.DomainKeyID)
	if err != nil {
		return nil, err
	}
	key, err := b.p11.UnwrapKey(s, keyWrapMechanism(), dk, ref.Token, transitBackingKeyTemplate())
	if err != nil {
		return nil, b.forgetStaleDomainKey(ref.DomainKeyID, integrityError(op, err))
	}
	defer b.destroy(s, key)
	w, err := b.p11.WrapKey(s, keyWrapMechanism(), sk, key)
	if err != nil {
		return nil, deviceError(op, err)
	}
	if validate.KeyToken(w) != nil {
		// A token that holds a key of another size is not a backing key.
		return nil, typedError(op, hsm.ErrInvalidInput, "key token does not hold a %d-byte key", hsm.BackingKeySize)
	}
	return w, nil
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
	var tokens [][]byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		sk, err := b.unwrapFromPeer(s, op, sessionKey, unwrappedSessionKeyTemplate(), hsm.BackingKeySize)
		if err != nil {
			return err
		}
		defer b.destroy(s, sk)
		out := make([][]byte, len(wrapped))
		for i, w := range wrapped {
			if err := ctx.Err(); err != nil {
				return &hsm.Error{Op: op, Err: err}
			}
			if out[i], err = b.rewrapFromSessionKey(s, op, dkID, dk, sk, w); err != nil {
				return keyError(err, i)
			}
		}
		tokens = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tokens, nil
}

// rewrapFromSessionKey unwraps one key under the session key sk into a
// transit session object and wraps it under domain key dk.
func (b *Backend) rewrapFromSessionKey(s pkcs11.SessionHandle, op, dkID string, dk, sk pkcs11.ObjectHandle, w []byte) ([]byte, error) {
	key, err := b.p11.UnwrapKey(s, keyWrapMechanism(), sk, w, transitBackingKeyTemplate())
	if err != nil {
		return nil, integrityError(op, err)
	}
	defer b.destroy(s, key)
	if err := b.checkKeyLength(s, op, key, hsm.BackingKeySize); err != nil {
		return nil, err
	}
	token, err := b.p11.WrapKey(s, keyWrapMechanism(), dk, key)
	if err != nil {
		return nil, b.forgetStaleDomainKey(dkID, deviceError(op, err))
	}
	// SoftHSM 2.6 reports no length for the unwrapped key, so the token's
	// size is the check there. It cannot be exact: SoftHSM zero-pads a key
	// to whole 8-byte blocks before wrapping it (with CKM_AES_KEY_WRAP as
	// well), so a 25- to 31-byte key becomes a 32-byte one ending in zeros.
	// Only a peer that could send any key of its choosing can do that, so it
	// is tolerated.
	if validate.KeyToken(token) != nil {
		return nil, typedError(op, hsm.ErrInvalidInput, "the wrapped key is not a %d-byte key", hsm.BackingKeySize)
	}
	return token, nil
}

// keyError says which key of a batch an error is about, keeping its type.
func keyError(err error, i int) error {
	if typed, ok := err.(*hsm.Error); ok {
		return &hsm.Error{Op: typed.Op, Code: typed.Code, Retryable: typed.Retryable, Err: fmt.Errorf("key %d: %w", i, typed.Err)}
	}
	return fmt.Errorf("key %d: %w", i, err)
}

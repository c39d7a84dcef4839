//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// ExportKeyToken implements hsm.Backend. The backing key goes from one
// wrapping to the other as a sensitive session object, so its value is
// never in this process.
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
	var wrapped []byte
	err = b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		key, err := b.p11.UnwrapKey(s, keyWrapMechanism(), dk, token, transitBackingKeyTemplate())
		if err != nil {
			return b.forgetStaleDomainKey(dkID, integrityError(op, err))
		}
		defer b.destroy(s, key)
		peerKey, err := b.createPeerKey(s, op, peer)
		if err != nil {
			return err
		}
		defer b.destroy(s, peerKey)
		wrapped, err = b.p11.WrapKey(s, oaepMechanism(), peerKey, key)
		return deviceError(op, err)
	})
	return wrapped, err
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
	var token []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		tk, err := b.transportKey(s, op, false)
		if err != nil {
			return err
		}
		key, err := b.p11.UnwrapKey(s, oaepMechanism(), tk.private, wrapped, transitBackingKeyTemplate())
		if err != nil {
			return b.forgetStaleTransportKey(integrityError(op, err))
		}
		defer b.destroy(s, key)
		if err := b.checkKeyLength(s, op, key, hsm.BackingKeySize); err != nil {
			return err
		}
		token, err = b.p11.WrapKey(s, keyWrapMechanism(), dk, key)
		if err != nil {
			return b.forgetStaleDomainKey(dkID, deviceError(op, err))
		}
		// SoftHSM 2.6 reports no length for the unwrapped key, so the
		// token's size is the check there. It cannot be exact: SoftHSM
		// zero-pads a key to whole 8-byte blocks before wrapping it (with
		// CKM_AES_KEY_WRAP as well), so a 25- to 31-byte key becomes a
		// 32-byte one ending in zeros. Only a peer that could send any key
		// of its choosing can do that, so it is tolerated.
		if validate.KeyToken(token) != nil {
			return typedError(op, hsm.ErrInvalidInput, "the wrapped key is not a %d-byte key", hsm.BackingKeySize)
		}
		return nil
	})
	return token, err
}

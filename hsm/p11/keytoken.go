//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"

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
	var token []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		key, err := b.p11.GenerateKey(s, mechanism(pkcs11.CKM_AES_KEY_GEN, nil), newBackingKeyTemplate())
		if err != nil {
			return deviceError(op, err)
		}
		defer b.destroy(s, key)
		token, err = b.p11.WrapKey(s, keyWrapMechanism(), dk, key)
		if err != nil {
			return b.forgetStaleDomainKey(dkID, deviceError(op, err))
		}
		if validate.KeyToken(token) != nil {
			return typedError(op, hsm.ErrUnavailable, "device produced a %d-byte key token", len(token))
		}
		return nil
	})
	return token, err
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
	var key *crypto.Secret
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		h, err := b.p11.UnwrapKey(s, keyWrapMechanism(), dk, token, exportedBackingKeyTemplate())
		if err != nil {
			return b.forgetStaleDomainKey(dkID, integrityError(op, err))
		}
		defer b.destroy(s, h)
		attrs, err := b.p11.GetAttributeValue(s, h, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE, nil)})
		if err != nil {
			return deviceError(op, err)
		}
		if len(attrs) != 1 || len(attrs[0].Value) != hsm.BackingKeySize {
			if len(attrs) == 1 {
				clear(attrs[0].Value)
			}
			return typedError(op, hsm.ErrInvalidInput, "key token does not hold a %d-byte key", hsm.BackingKeySize)
		}
		key = crypto.NewSecret(attrs[0].Value)
		return nil
	})
	return key, err
}

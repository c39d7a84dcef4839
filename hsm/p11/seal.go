//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/keycache"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// Seal implements hsm.Backend.
func (b *Backend) Seal(ctx context.Context, dkID string, token, salt, nonce, plaintext, aad []byte) ([]byte, error) {
	const op = "seal"
	if err := checkSealArgs(dkID, token, salt, nonce); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	var sealed []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		callKey, err := b.deriveCallKey(s, op, dkID, token, salt)
		if err != nil {
			return err
		}
		defer b.destroy(s, callKey)
		gcm := pkcs11.NewGCMParams(nonce, aad, hsm.TagSize*8)
		defer gcm.Free()
		if err := b.p11.EncryptInit(s, mechanism(pkcs11.CKM_AES_GCM, gcm), callKey); err != nil {
			return deviceError(op, err)
		}
		sealed, err = b.p11.Encrypt(s, plaintext)
		return deviceError(op, err)
	})
	return sealed, err
}

// Open implements hsm.Backend.
func (b *Backend) Open(ctx context.Context, dkID string, token, salt, nonce, sealed, aad []byte) (*crypto.Secret, error) {
	const op = "open sealed"
	if err := checkSealArgs(dkID, token, salt, nonce); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.Sealed(sealed); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	var plaintext []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		callKey, err := b.deriveCallKey(s, op, dkID, token, salt)
		if err != nil {
			return err
		}
		defer b.destroy(s, callKey)
		gcm := pkcs11.NewGCMParams(nonce, aad, hsm.TagSize*8)
		defer gcm.Free()
		if err := b.p11.DecryptInit(s, mechanism(pkcs11.CKM_AES_GCM, gcm), callKey); err != nil {
			return deviceError(op, err)
		}
		plaintext, err = b.p11.Decrypt(s, sealed)
		return integrityError(op, err)
	})
	if err != nil {
		return nil, err
	}
	return crypto.NewSecret(plaintext), nil
}

func checkSealArgs(dkID string, token, salt, nonce []byte) error {
	if err := validate.DomainKeyID(dkID); err != nil {
		return err
	}
	if err := validate.KeyToken(token); err != nil {
		return err
	}
	return validate.SaltAndNonce(salt, nonce)
}

// deriveCallKey derives, inside the HSM, the one-call AES-256 key
// AES-256-ECB(backing key, salt). The caller destroys it.
func (b *Backend) deriveCallKey(s pkcs11.SessionHandle, op, dkID string, token, salt []byte) (pkcs11.ObjectHandle, error) {
	backing, err := b.residentBackingKey(s, op, dkID, token)
	if err != nil {
		return 0, err
	}
	defer b.releaseBackingKey(s, backing)
	mech, free := ecbEncryptDataMechanism(salt)
	defer free()
	callKey, err := b.p11.DeriveKey(s, mech, backing.Value().handle, callKeyTemplate())
	if err != nil {
		return 0, deviceError(op, err)
	}
	return callKey, nil
}

// residentBackingKey returns the backing key in token as a cached,
// non-extractable session object, unwrapping it on a cache miss.
func (b *Backend) residentBackingKey(s pkcs11.SessionHandle, op, dkID string, token []byte) (*keycache.Entry[sessionKey], error) {
	cacheKey := keycache.KeyFor(dkID, token)
	if e, ok := b.backingKeys.Get(cacheKey); ok {
		return e, nil
	}
	dk, err := b.domainKey(s, op, dkID)
	if err != nil {
		return nil, err
	}
	h, err := b.p11.UnwrapKey(s, keyWrapMechanism(), dk, token, residentBackingKeyTemplate())
	if err != nil {
		return nil, b.forgetStaleDomainKey(dkID, integrityError(op, err))
	}
	e, evicted := b.backingKeys.Add(cacheKey, sessionKey{handle: h, session: s})
	for _, k := range evicted {
		b.destroy(s, k.handle)
	}
	return e, nil
}

func (b *Backend) releaseBackingKey(s pkcs11.SessionHandle, e *keycache.Entry[sessionKey]) {
	if k, dispose := b.backingKeys.Release(e); dispose {
		b.destroy(s, k.handle)
	}
}

// forgetHandles runs when the pool closes a failed session s. The device
// has destroyed the session objects s created, so their handles must not be
// used or destroyed again. If s was the last session, SoftHSM also
// invalidates token-object handles (domain and transport keys), so those
// are looked up afresh too; a lookup is cheap and session loss is rare.
func (b *Backend) forgetHandles(s pkcs11.SessionHandle) {
	b.backingKeys.Forget(func(k sessionKey) bool { return k.session == s })
	b.domainKeysMu.Lock()
	clear(b.domainKeys)
	b.domainKeysMu.Unlock()
	b.transportMu.Lock()
	b.transport = nil
	b.transportMu.Unlock()
}

package soft

import (
	"context"
	"crypto/aes"
	"crypto/cipher"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/keycache"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// Seal implements hsm.Backend.
func (b *Backend) Seal(ctx context.Context, dkID string, token, salt, nonce, plaintext, aad []byte) ([]byte, error) {
	const op = "seal"
	aead, err := b.callAEAD(ctx, op, dkID, token, salt, nonce)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nonce, plaintext, aad), nil
}

// Open implements hsm.Backend.
func (b *Backend) Open(ctx context.Context, dkID string, token, salt, nonce, sealed, aad []byte) (*crypto.Secret, error) {
	const op = "open sealed"
	if err := validate.Sealed(sealed); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	aead, err := b.callAEAD(ctx, op, dkID, token, salt, nonce)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, nonce, sealed, aad)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: hsm.ErrDecrypt}
	}
	return crypto.NewSecret(plaintext), nil
}

// callAEAD returns AES-256-GCM under the call key AES-256-ECB(backing key,
// salt), the derivation the PKCS#11 backend runs in the HSM with
// CKM_AES_ECB_ENCRYPT_DATA.
func (b *Backend) callAEAD(ctx context.Context, op, dkID string, token, salt, nonce []byte) (cipher.AEAD, error) {
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.KeyToken(token); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.SaltAndNonce(salt, nonce); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	backing, err := b.backingKey(ctx, op, dkID, token)
	if err != nil {
		return nil, err
	}
	callKey, err := deriveCallKey(backing.Value().Bytes(), salt)
	b.releaseBackingKey(backing)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	defer clear(callKey)
	block, err := aes.NewCipher(callKey)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	return aead, nil
}

func deriveCallKey(backingKey, salt []byte) ([]byte, error) {
	block, err := aes.NewCipher(backingKey)
	if err != nil {
		return nil, err
	}
	callKey := make([]byte, len(salt))
	for i := 0; i < len(salt); i += aes.BlockSize {
		block.Encrypt(callKey[i:], salt[i:])
	}
	return callKey, nil
}

// backingKey returns the unwrapped backing key from the cache, unwrapping
// it on a miss.
func (b *Backend) backingKey(ctx context.Context, op, dkID string, token []byte) (*keycache.Entry[*crypto.Secret], error) {
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	cacheKey := keycache.KeyFor(dkID, token)
	if e, ok := b.backingKeys.Get(cacheKey); ok {
		return e, nil
	}
	key, err := b.unwrapLocked(op, dkID, token)
	if err != nil {
		return nil, err
	}
	e, evicted := b.backingKeys.Add(cacheKey, key)
	for _, k := range evicted {
		k.Zero()
	}
	return e, nil
}

func (b *Backend) releaseBackingKey(e *keycache.Entry[*crypto.Secret]) {
	if k, dispose := b.backingKeys.Release(e); dispose {
		k.Zero()
	}
}

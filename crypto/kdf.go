package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// callKeyInfo is the HKDF info string. It names the format version so a
// future format never derives the same call key from the same salt.
const callKeyInfo = "trent/v1/call-key"

// DeriveCallKey returns HKDF-SHA256(secret = backing key, salt, info =
// "trent/v1/call-key"), a 32-byte AES-256-GCM key for one call. A fresh key
// per call keeps each GCM key far below its nonce and data limits however
// much one backing key encrypts. The caller must Zero the result.
func DeriveCallKey(backingKey *Secret, salt []byte) (*Secret, error) {
	k := new([BackingKeySize]byte)
	if err := deriveCallKey(k, backingKey, salt); err != nil {
		return nil, err
	}
	return NewSecret(k[:]), nil
}

func deriveCallKey(dst *[BackingKeySize]byte, backingKey *Secret, salt []byte) error {
	if backingKey.Len() != BackingKeySize {
		return fmt.Errorf("%w: backing key is %d bytes, want %d", ErrInvalidKey, backingKey.Len(), BackingKeySize)
	}
	if len(salt) != SaltSize {
		return fmt.Errorf("%w: salt: length %d, want %d bytes", ErrInvalidLength, len(salt), SaltSize)
	}
	k, err := hkdf.Key(sha256.New, backingKey.Bytes(), salt, callKeyInfo, BackingKeySize)
	if err != nil {
		return fmt.Errorf("derive call key: %w", err)
	}
	copy(dst[:], k)
	clear(k)
	return nil
}

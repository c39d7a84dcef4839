package hsmtest

import (
	"crypto/aes"
	"crypto/cipher"
)

// referenceSeal computes, in plain Go, what the Seal contract specifies:
// call key = AES-256-ECB(backing key, salt), then AES-256-GCM. A backend
// whose output differs derives or encrypts differently from the contract.
func referenceSeal(backingKey, salt, nonce, plaintext, aad []byte) ([]byte, error) {
	backing, err := aes.NewCipher(backingKey)
	if err != nil {
		return nil, err
	}
	callKey := make([]byte, len(salt))
	for i := 0; i < len(salt); i += aes.BlockSize {
		backing.Encrypt(callKey[i:i+aes.BlockSize], salt[i:i+aes.BlockSize])
	}
	block, err := aes.NewCipher(callKey)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return gcm.Seal(nil, nonce, plaintext, aad), nil
}

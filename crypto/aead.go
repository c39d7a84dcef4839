package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
)

// BackingKeySize is the size of a symmetric backing key and of a call key:
// AES-256.
const BackingKeySize = 32

var (
	// ErrDecrypt: the ciphertext failed authentication. The cause is
	// deliberately not told apart: a wrong context, a changed byte and a
	// foreign key look the same to AES-GCM, and saying which would help an
	// attacker more than a user.
	ErrDecrypt = errors.New("crypto: ciphertext does not verify")
	// ErrInvalidKey: a backing key is missing or not BackingKeySize bytes.
	ErrInvalidKey = errors.New("crypto: invalid key")
)

// inlineContextKeys covers the usual encryption context without a heap
// allocation for sorting its keys.
const inlineContextKeys = 8

// NewHeader returns a header for one Seal call with a fresh salt and nonce
// read from rand (crypto/rand if nil). Never reuse a header for two calls.
func NewHeader(keyID string, versionID [VersionIDSize]byte, rand io.Reader) (Header, error) {
	if err := checkKeyID(keyID); err != nil {
		return Header{}, fmt.Errorf("%w: %s", ErrInvalidKeyID, err)
	}
	if rand == nil {
		rand = cryptorand.Reader
	}
	h := Header{KeyID: keyID, VersionID: versionID}
	if _, err := io.ReadFull(rand, h.Salt[:]); err != nil {
		return Header{}, fmt.Errorf("crypto: reading salt: %w", err)
	}
	if _, err := io.ReadFull(rand, h.Nonce[:]); err != nil {
		return Header{}, fmt.Errorf("crypto: reading nonce: %w", err)
	}
	return h, nil
}

// Seal encrypts plaintext (MinPlaintext to MaxPlaintext bytes) under a key
// derived from backingKey and h.Salt, and returns the whole ciphertext blob.
// The AAD is AssociatedData(header, ec), so Open needs the same header bytes
// and an equal context. ec must pass ValidateContext.
func Seal(backingKey *Secret, h Header, plaintext []byte, ec map[string]string) ([]byte, error) {
	if err := ValidPlaintextSize(len(plaintext)); err != nil {
		return nil, err
	}
	var keyBuf [inlineContextKeys]string
	keys := sortedKeys(keyBuf[:0], ec)
	ecSize, err := checkContext(ec, keys)
	if err != nil {
		return nil, err
	}
	blob, err := h.AppendBinary(make([]byte, 0, h.size()+len(plaintext)+TagSize))
	if err != nil {
		return nil, err
	}
	aad := appendCanonicalContext(append(make([]byte, 0, len(blob)+ecSize), blob...), ec, keys)
	aead, err := callAEAD(backingKey, h.Salt[:])
	if err != nil {
		return nil, err
	}
	// The nonce is taken from blob's header rather than from h, whose arrays
	// would then escape to the heap: one allocation less on the hot path.
	nonce := blob[len(blob)-NonceSize:]
	return aead.Seal(blob, nonce, plaintext, aad), nil
}

// Open authenticates and decrypts c under backingKey with context ec. Any
// mismatch (context, header, sealed bytes, key) gives ErrDecrypt and no
// plaintext.
func Open(backingKey *Secret, c *Ciphertext, ec map[string]string) (*Secret, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no ciphertext", ErrMalformedCiphertext)
	}
	if len(c.Sealed) < TagSize {
		return nil, fmt.Errorf("%w: ciphertext truncated: sealed part is %d bytes, shorter than the %d-byte tag",
			ErrMalformedCiphertext, len(c.Sealed), TagSize)
	}
	// Re-marshalling gives back the bytes that were parsed: the format has
	// exactly one encoding per header.
	aad, err := c.Header.AppendBinary(make([]byte, 0, c.size()+canonicalContextSize(ec)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCiphertext, err)
	}
	var keyBuf [inlineContextKeys]string
	aad = appendCanonicalContext(aad, ec, sortedKeys(keyBuf[:0], ec))
	aead, err := callAEAD(backingKey, c.Salt[:])
	if err != nil {
		return nil, err
	}
	buf := make([]byte, len(c.Sealed)-TagSize)
	pt, err := aead.Open(buf[:0], c.Nonce[:], c.Sealed, aad)
	if err != nil {
		clear(buf) // GCM may have decrypted into it before checking the tag
		return nil, fmt.Errorf("%w: wrong encryption context, altered, or made under another key", ErrDecrypt)
	}
	return NewSecret(pt), nil
}

// callAEAD returns the AES-256-GCM instance for one call. The derived key is
// zeroed at once; the AES key schedule inside the returned AEAD cannot be, and
// stays in memory until the garbage collector reuses it.
func callAEAD(backingKey *Secret, salt []byte) (cipher.AEAD, error) {
	var k [BackingKeySize]byte
	defer clear(k[:])
	if err := deriveCallKey(&k, backingKey, salt); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	return cipher.NewGCM(block)
}

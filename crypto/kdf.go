package crypto

import (
	"bytes"
	"crypto/hmac"
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
	// HKDF (RFC 5869) with one block of output: Extract, PRK = HMAC(salt,
	// backing key); Expand, OKM = HMAC(PRK, info || 0x01). Written out
	// with sha256.Sum256 on stack buffers because crypto/hkdf, through
	// hash.Hash, allocates 16 objects (1.2 KB) a call, and this runs on
	// every Encrypt and Decrypt (BenchmarkDeriveCallKey). The result is
	// checked against crypto/hkdf in the tests.
	var prk [sha256.Size]byte
	hmacSHA256(&prk, salt, backingKey.Bytes())
	var info [len(callKeyInfo) + 1]byte
	copy(info[:], callKeyInfo)
	info[len(callKeyInfo)] = 1
	hmacSHA256(dst, prk[:], info[:])
	clear(prk[:])
	return nil
}

// hmacMaxMessage is the longest message hmacSHA256 handles on the stack:
// a backing key, or the info string and its counter byte.
const hmacMaxMessage = max(BackingKeySize, len(callKeyInfo)+1)

// hmacSHA256 sets mac to HMAC-SHA256(key, msg) (RFC 2104). A key of at
// most one block and a message of at most hmacMaxMessage bytes, the sizes
// a call key's derivation uses, take no allocation; other sizes go through
// crypto/hmac. The key's padded copies are cleared before returning.
func hmacSHA256(mac *[sha256.Size]byte, key, msg []byte) {
	if len(key) > sha256.BlockSize || len(msg) > hmacMaxMessage {
		// Copies, so that the fast path's arguments stay on the stack.
		*mac = hmacSHA256Slow(bytes.Clone(key), bytes.Clone(msg))
		return
	}
	var buf [sha256.BlockSize + max(hmacMaxMessage, sha256.Size)]byte
	pad := buf[:sha256.BlockSize]
	copy(pad, key)
	for i := range pad {
		pad[i] ^= 0x36
	}
	n := sha256.BlockSize + copy(buf[sha256.BlockSize:], msg)
	inner := sha256.Sum256(buf[:n])
	clear(buf[sha256.BlockSize:])
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	n = sha256.BlockSize + copy(buf[sha256.BlockSize:], inner[:])
	*mac = sha256.Sum256(buf[:n])
	clear(buf[:])
	clear(inner[:])
}

func hmacSHA256Slow(key, msg []byte) (mac [sha256.Size]byte) {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	copy(mac[:], h.Sum(nil))
	clear(key)
	return mac
}

package soft

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math"
)

// AES key wrap with padding (RFC 5649): the key-token format, and what
// PKCS#11's CKM_AES_KEY_WRAP_PAD produces, so tokens move between backends.

// errKeyWrapIntegrity deliberately says nothing about which check failed.
var errKeyWrapIntegrity = errors.New("key unwrap: integrity check failed")

// kwpICV is RFC 5649's alternative initial value (the high half of the AIV).
var kwpICV = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// wrapKeyPadded wraps a 1 to 2^32-1 byte key under kek (RFC 5649 §4.1).
func wrapKeyPadded(kek cipher.Block, key []byte) ([]byte, error) {
	if len(key) == 0 || uint64(len(key)) > math.MaxUint32 {
		return nil, errors.New("key wrap: key must be 1 to 2^32-1 bytes")
	}
	var aiv [8]byte
	copy(aiv[:4], kwpICV[:])
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(key)))
	padded := make([]byte, (len(key)+7)/8*8)
	defer clear(padded)
	copy(padded, key)
	if len(padded) == 8 {
		// A single block is one AES encryption of AIV || P (§4.1 step 2).
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		kek.Encrypt(out, out)
		return out, nil
	}
	return wrapBlocks(kek, aiv, padded), nil
}

// unwrapKeyPadded reverses wrapKeyPadded (RFC 5649 §4.2), checking the
// initial value, the length and the padding before returning anything.
func unwrapKeyPadded(kek cipher.Block, wrapped []byte) ([]byte, error) {
	if len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, errKeyWrapIntegrity
	}
	var aiv [8]byte
	var padded []byte
	if len(wrapped) == 16 {
		block := make([]byte, 16)
		kek.Decrypt(block, wrapped)
		copy(aiv[:], block[:8])
		padded = block[8:]
	} else {
		aiv, padded = unwrapBlocks(kek, wrapped)
	}
	n := len(padded) / 8
	mli := binary.BigEndian.Uint32(aiv[4:])
	lengthOK := uint64(mli) > 8*uint64(n-1) && uint64(mli) <= 8*uint64(n)
	valid := subtle.ConstantTimeCompare(aiv[:4], kwpICV[:])
	if lengthOK {
		valid &= subtle.ConstantTimeCompare(padded[mli:], make([]byte, len(padded)-int(mli)))
	} else {
		valid = 0
	}
	if valid != 1 {
		clear(padded)
		return nil, errKeyWrapIntegrity
	}
	return padded[:mli], nil
}

// wrapBlocks is the RFC 3394 wrapping process W with initial value iv over
// two or more 64-bit blocks.
func wrapBlocks(kek cipher.Block, iv [8]byte, plaintext []byte) []byte {
	n := len(plaintext) / 8
	out := make([]byte, 8+len(plaintext))
	copy(out[8:], plaintext)
	a := binary.BigEndian.Uint64(iv[:])
	var b [16]byte
	defer clear(b[:])
	for j := range 6 {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			binary.BigEndian.PutUint64(b[:8], a)
			copy(b[8:], r)
			kek.Encrypt(b[:], b[:])
			a = binary.BigEndian.Uint64(b[:8]) ^ uint64(n*j+i)
			copy(r, b[8:])
		}
	}
	binary.BigEndian.PutUint64(out[:8], a)
	return out
}

// unwrapBlocks is the RFC 3394 unwrapping process W⁻¹; it returns the
// recovered initial value for the caller to check.
func unwrapBlocks(kek cipher.Block, wrapped []byte) (iv [8]byte, plaintext []byte) {
	n := len(wrapped)/8 - 1
	plaintext = make([]byte, 8*n)
	copy(plaintext, wrapped[8:])
	a := binary.BigEndian.Uint64(wrapped[:8])
	var b [16]byte
	defer clear(b[:])
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := plaintext[8*(i-1) : 8*i]
			binary.BigEndian.PutUint64(b[:8], a^uint64(n*j+i))
			copy(b[8:], r)
			kek.Decrypt(b[:], b[:])
			a = binary.BigEndian.Uint64(b[:8])
			copy(r, b[8:])
		}
	}
	binary.BigEndian.PutUint64(iv[:], a)
	return iv, plaintext
}

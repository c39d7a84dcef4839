package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// MaxContextSize bounds the canonical encoding of an encryption context so the
// AAD of every call, and what Decrypt callers must keep, stays small.
const MaxContextSize = 8192

// ErrInvalidContext: an encryption context breaks a rule (empty key, invalid
// UTF-8, too large). Key names appear in the message: they are not secret.
var ErrInvalidContext = errors.New("crypto: invalid encryption context")

// EncryptionContext is the non-secret key-value data that a caller binds to a
// ciphertext: Decrypt succeeds only with the exact same map.
type EncryptionContext map[string]string

// CanonicalContext encodes ec so that two maps give the same bytes exactly when
// they are equal: uvarint(number of pairs), then for each pair in bytewise key
// order uvarint(len(k)) k uvarint(len(v)) v. Nil and empty encode identically.
// The length prefixes make the encoding injective whatever the strings hold,
// which is what lets it stand in the AAD for the map itself.
func CanonicalContext(ec map[string]string) []byte {
	return appendCanonicalContext(make([]byte, 0, canonicalContextSize(ec)), ec, sortedKeys(nil, ec))
}

// appendCanonicalContext takes the keys already sorted so a caller that also
// validates sorts once.
func appendCanonicalContext(dst []byte, ec map[string]string, sorted []string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ec)))
	for _, k := range sorted {
		v := ec[k]
		dst = binary.AppendUvarint(dst, uint64(len(k)))
		dst = append(dst, k...)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// canonicalContextSize is len(CanonicalContext(ec)) without encoding, so
// callers can size one buffer and ValidateContext can check the limit cheaply.
func canonicalContextSize(ec map[string]string) int {
	n := uvarintLen(uint64(len(ec)))
	for k, v := range ec {
		n += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(len(v))) + len(v)
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// sortedKeys appends the keys of ec to dst in bytewise order. Go compares
// strings bytewise, which keeps the order independent of locale and Unicode
// normalisation. A caller with a small array on its stack avoids a heap
// allocation for the usual handful of keys.
func sortedKeys(dst []string, ec map[string]string) []string {
	for k := range ec {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// ValidateContext checks ec against the limits Encrypt enforces: every key
// non-empty, keys and values valid UTF-8, and the canonical encoding at most
// MaxContextSize bytes.
func ValidateContext(ec map[string]string) error {
	if len(ec) == 0 {
		return nil
	}
	_, err := checkContext(ec, sortedKeys(nil, ec))
	return err
}

// checkContext validates ec and returns its encoded size. It walks the keys
// in canonical order so the key named in an error does not depend on map
// iteration order; long key names are cut to 64 characters so an oversized
// context cannot flood a log line.
func checkContext(ec map[string]string, sorted []string) (int, error) {
	for _, k := range sorted {
		switch {
		case k == "":
			return 0, fmt.Errorf("%w: a key is empty; keys must be 1 or more bytes", ErrInvalidContext)
		case !utf8.ValidString(k):
			return 0, fmt.Errorf("%w: key %.64q is not valid UTF-8", ErrInvalidContext, k)
		case !utf8.ValidString(ec[k]):
			return 0, fmt.Errorf("%w: value of key %.64q is not valid UTF-8", ErrInvalidContext, k)
		}
	}
	n := canonicalContextSize(ec)
	if n > MaxContextSize {
		return 0, fmt.Errorf("%w: encoded size %d bytes exceeds the maximum %d bytes", ErrInvalidContext, n, MaxContextSize)
	}
	return n, nil
}

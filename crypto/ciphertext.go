package crypto

import (
	"errors"
	"fmt"
)

// Layout of a version-1 ciphertext; see DESIGN.md in this folder.
const (
	FormatVersion = 0x01
	MaxKeyIDLen   = 255
	VersionIDSize = 16
	SaltSize      = 32
	NonceSize     = 12
	TagSize       = 16

	// fixedHeaderSize is the header without the key id.
	fixedHeaderSize = 1 + 1 + VersionIDSize + SaltSize + NonceSize
)

var (
	// ErrMalformedCiphertext: the blob is not a ciphertext this build can
	// read (empty, truncated, bad key id, unknown version). Nothing was
	// decrypted.
	ErrMalformedCiphertext = errors.New("crypto: malformed ciphertext")
	// ErrUnsupportedVersion: the format version byte is unknown. It wraps
	// ErrMalformedCiphertext, so callers that only care that the blob is
	// unusable need test for that one alone.
	ErrUnsupportedVersion = fmt.Errorf("%w: unsupported format version", ErrMalformedCiphertext)
	// ErrInvalidKeyID: a key id given to NewHeader or Seal is empty, longer
	// than MaxKeyIDLen, or has a character outside [A-Za-z0-9-].
	ErrInvalidKeyID = errors.New("crypto: invalid key id")
)

// Header is everything in a ciphertext before the sealed bytes. All of it is
// authenticated: it is part of the AAD.
type Header struct {
	KeyID     string
	VersionID [VersionIDSize]byte
	Salt      [SaltSize]byte
	Nonce     [NonceSize]byte
}

// Ciphertext is a parsed blob.
type Ciphertext struct {
	Header
	// Sealed is the AES-256-GCM output, ciphertext then tag.
	Sealed []byte
}

// MarshalBinary returns the serialized header, the exact prefix of every
// ciphertext made with it.
func (h Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, h.size()))
}

// AppendBinary appends the serialized header to b. It refuses a key id that
// ParseCiphertext would reject, so every header written can be read back.
func (h Header) AppendBinary(b []byte) ([]byte, error) {
	if err := checkKeyID(h.KeyID); err != nil {
		return b, fmt.Errorf("%w: %s", ErrInvalidKeyID, err)
	}
	b = append(b, FormatVersion, byte(len(h.KeyID)))
	b = append(b, h.KeyID...)
	b = append(b, h.VersionID[:]...)
	b = append(b, h.Salt[:]...)
	b = append(b, h.Nonce[:]...)
	return b, nil
}

func (h Header) size() int { return fixedHeaderSize + len(h.KeyID) }

// Marshal returns the blob. It returns nil if the header is invalid, which
// cannot happen for a Ciphertext that ParseCiphertext returned.
func (c *Ciphertext) Marshal() []byte {
	b, err := c.Header.AppendBinary(make([]byte, 0, c.size()+len(c.Sealed)))
	if err != nil {
		return nil
	}
	return append(b, c.Sealed...)
}

// ParseCiphertext splits blob into header and sealed bytes without
// decrypting. It accepts exactly the blobs Marshal produces, so re-marshalling
// the header reproduces the authenticated bytes. Sealed aliases blob.
func ParseCiphertext(blob []byte) (*Ciphertext, error) {
	if len(blob) == 0 {
		return nil, fmt.Errorf("%w: ciphertext is empty", ErrMalformedCiphertext)
	}
	if blob[0] != FormatVersion {
		return nil, fmt.Errorf("%w: 0x%02x (this build reads 0x%02x)", ErrUnsupportedVersion, blob[0], FormatVersion)
	}
	if len(blob) < 2 {
		return nil, fmt.Errorf("%w: ciphertext truncated: header needs at least %d bytes, have %d",
			ErrMalformedCiphertext, fixedHeaderSize+1, len(blob))
	}
	idLen := int(blob[1])
	if idLen == 0 {
		return nil, fmt.Errorf("%w: key id length is 0", ErrMalformedCiphertext)
	}
	if 2+idLen > len(blob) {
		return nil, fmt.Errorf("%w: key id length %d runs past the end of the %d-byte ciphertext",
			ErrMalformedCiphertext, idLen, len(blob))
	}
	keyID := blob[2 : 2+idLen]
	if err := checkKeyIDChars(keyID); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformedCiphertext, err)
	}
	hdrLen := fixedHeaderSize + idLen
	if len(blob) < hdrLen {
		return nil, fmt.Errorf("%w: ciphertext truncated: header needs %d bytes, have %d",
			ErrMalformedCiphertext, hdrLen, len(blob))
	}
	if len(blob)-hdrLen < TagSize {
		return nil, fmt.Errorf("%w: ciphertext truncated: sealed part is %d bytes, shorter than the %d-byte tag",
			ErrMalformedCiphertext, len(blob)-hdrLen, TagSize)
	}
	c := &Ciphertext{Header: Header{KeyID: string(keyID)}, Sealed: blob[hdrLen:]}
	p := 2 + idLen
	p += copy(c.VersionID[:], blob[p:])
	p += copy(c.Salt[:], blob[p:])
	copy(c.Nonce[:], blob[p:])
	return c, nil
}

// AssociatedData is the AAD of a ciphertext: the whole serialized header
// followed by CanonicalContext(ec). Binding the header means no field of it
// (version, key id, version id, salt, nonce) can be changed without Open
// failing, so a blob cannot be redirected to another key or version; binding
// the context means Decrypt needs the exact map Encrypt was given.
func AssociatedData(header []byte, ec map[string]string) []byte {
	aad := make([]byte, 0, len(header)+canonicalContextSize(ec))
	return appendCanonicalContext(append(aad, header...), ec, sortedKeys(nil, ec))
}

func checkKeyID(id string) error {
	if id == "" {
		return errors.New("key id is empty")
	}
	if len(id) > MaxKeyIDLen {
		return fmt.Errorf("key id is %d bytes, more than the maximum %d", len(id), MaxKeyIDLen)
	}
	return checkKeyIDChars(id)
}

// checkKeyIDChars keeps key ids printable and unambiguous in logs and ARNs.
// The offending byte is not echoed: it came from an untrusted blob.
func checkKeyIDChars[T string | []byte](id T) error {
	for i := range len(id) {
		if c := id[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("key id has a character outside [A-Za-z0-9-] at offset %d", i)
		}
	}
	return nil
}

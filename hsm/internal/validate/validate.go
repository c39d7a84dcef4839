// Package validate holds the argument checks both backends apply before
// touching key material, so they reject the same inputs the same way.
package validate

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"github.com/trent-kms/trent/hsm"
)

const (
	// MaxDomainKeyIDLen bounds ids so PKCS#11 labels ("trent-dk-"+id) stay
	// short enough for every device.
	MaxDomainKeyIDLen = 64
	// KeyTokenSize is an RFC 5649 wrap of a 32-byte backing key.
	KeyTokenSize = hsm.BackingKeySize + 8
	// MaxRandom bounds one GenerateRandom call.
	MaxRandom = 1 << 20
	// TransportKeyBits is the RSA modulus size of transport keys.
	TransportKeyBits = 3072
	// maxPeerKeyBits bounds the work an untrusted peer key can cause.
	maxPeerKeyBits = 8192
	// MinSigningKeyTokenSize and MaxSigningKeyTokenSize bound an RFC 5649
	// wrap of a P-256 PKCS#8 key: its shortest encoding (no public key, as
	// SoftHSM makes it) wraps to 80 bytes, Go's (with the public key) to 152.
	// The lower bound also keeps symmetric key tokens out.
	MinSigningKeyTokenSize = 80
	MaxSigningKeyTokenSize = 512
)

// DomainKeyID accepts 1–64 characters from [A-Za-z0-9._-]: the id becomes
// part of a device label and a file record, so it must need no escaping.
func DomainKeyID(id string) error {
	if len(id) == 0 || len(id) > MaxDomainKeyIDLen {
		return fmt.Errorf("%w: domain key id must be 1 to %d characters", hsm.ErrInvalidInput, MaxDomainKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: domain key id may contain only letters, digits, '.', '_' and '-'", hsm.ErrInvalidInput)
		}
	}
	return nil
}

// KeyToken checks the size of a symmetric key token.
func KeyToken(token []byte) error {
	if len(token) != KeyTokenSize {
		return fmt.Errorf("%w: key token must be %d bytes, got %d", hsm.ErrInvalidInput, KeyTokenSize, len(token))
	}
	return nil
}

// SigningKeyToken checks the size of a signing key token. RFC 5649 output
// is a whole number of 8-byte blocks.
func SigningKeyToken(token []byte) error {
	if len(token) < MinSigningKeyTokenSize || len(token) > MaxSigningKeyTokenSize || len(token)%8 != 0 {
		return fmt.Errorf("%w: signing key token must be a multiple of 8 bytes from %d to %d, got %d",
			hsm.ErrInvalidInput, MinSigningKeyTokenSize, MaxSigningKeyTokenSize, len(token))
	}
	return nil
}

// Digest checks the digest SignWithKeyToken signs.
func Digest(digest []byte) error {
	if len(digest) != hsm.DigestSize {
		return fmt.Errorf("%w: digest must be %d bytes (SHA-256), got %d", hsm.ErrInvalidInput, hsm.DigestSize, len(digest))
	}
	return nil
}

// SaltAndNonce checks the per-call salt and the GCM nonce.
func SaltAndNonce(salt, nonce []byte) error {
	if len(salt) != hsm.SaltSize {
		return fmt.Errorf("%w: salt must be %d bytes, got %d", hsm.ErrInvalidInput, hsm.SaltSize, len(salt))
	}
	if len(nonce) != hsm.NonceSize {
		return fmt.Errorf("%w: nonce must be %d bytes, got %d", hsm.ErrInvalidInput, hsm.NonceSize, len(nonce))
	}
	return nil
}

// Sealed checks that a sealed blob can at least hold a tag. A shorter blob
// is a truncation, so it fails as an integrity error like any other damage.
func Sealed(sealed []byte) error {
	if len(sealed) < hsm.TagSize {
		return fmt.Errorf("%w: sealed data shorter than the tag", hsm.ErrDecrypt)
	}
	return nil
}

// RandomLength checks a GenerateRandom length.
func RandomLength(n int) error {
	if n < 0 || n > MaxRandom {
		return fmt.Errorf("%w: random length must be 0 to %d, got %d", hsm.ErrInvalidInput, MaxRandom, n)
	}
	return nil
}

// PeerTransportKey parses a peer's transport public key (PKIX DER). It must
// be RSA with at least TransportKeyBits bits.
func PeerTransportKey(der []byte) (*rsa.PublicKey, error) {
	parsed, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: peer transport key is not PKIX DER", hsm.ErrInvalidInput)
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: peer transport key is %T, want RSA", hsm.ErrInvalidInput, parsed)
	}
	if bits := pub.N.BitLen(); bits < TransportKeyBits || bits > maxPeerKeyBits {
		return nil, fmt.Errorf("%w: peer transport key has %d bits, want %d to %d", hsm.ErrInvalidInput, bits, TransportKeyBits, maxPeerKeyBits)
	}
	return pub, nil
}

// WrappedDomainKey checks that a wrapped domain key is one RSA block of this
// node's transport key.
func WrappedDomainKey(wrapped []byte) error { return transportWrapped("wrapped domain key", wrapped) }

func transportWrapped(what string, wrapped []byte) error {
	if len(wrapped) != TransportKeyBits/8 {
		return fmt.Errorf("%w: %s must be %d bytes, got %d", hsm.ErrInvalidInput, what, TransportKeyBits/8, len(wrapped))
	}
	return nil
}

// WrappedSessionKey checks that a batch's session key is one RSA block of
// this node's transport key.
func WrappedSessionKey(wrapped []byte) error { return transportWrapped("wrapped session key", wrapped) }

// BatchSize checks the number of keys of one ExportKeyTokens or
// ImportKeyTokens call.
func BatchSize(n int) error {
	if n == 0 || n > hsm.MaxKeyTokenBatch {
		return fmt.Errorf("%w: a batch must hold 1 to %d keys, got %d", hsm.ErrInvalidInput, hsm.MaxKeyTokenBatch, n)
	}
	return nil
}

// KeyTokenRefs checks every entry of an ExportKeyTokens list.
func KeyTokenRefs(refs []hsm.KeyTokenRef) error {
	if err := BatchSize(len(refs)); err != nil {
		return err
	}
	for i, r := range refs {
		if err := DomainKeyID(r.DomainKeyID); err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		if err := KeyToken(r.Token); err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
	}
	return nil
}

// BatchWrappedKeys checks every key of an ImportKeyTokens list: each is an
// RFC 5649 wrap of a 32-byte key under the session key, as big as a key token.
func BatchWrappedKeys(wrapped [][]byte) error {
	if err := BatchSize(len(wrapped)); err != nil {
		return err
	}
	for i, w := range wrapped {
		if len(w) != KeyTokenSize {
			return fmt.Errorf("%w: wrapped key %d must be %d bytes, got %d", hsm.ErrInvalidInput, i, KeyTokenSize, len(w))
		}
	}
	return nil
}

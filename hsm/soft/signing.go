package soft

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// A signing key token is RFC 5649 over the private key's PKCS#8 encoding,
// which is what PKCS#11's C_WrapKey(CKM_AES_KEY_WRAP_PAD) makes of an EC
// private key, so tokens move between the backends.

// GenerateSigningKeyToken implements hsm.Backend.
func (b *Backend) GenerateSigningKeyToken(ctx context.Context, dkID string) (token, publicKey []byte, err error) {
	const op = "generate signing key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: err}
	}
	if err := b.begin(ctx, op); err != nil {
		return nil, nil, err
	}
	defer b.mu.RUnlock()
	dk, err := b.domainKeyLocked(op, dkID)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	defer clear(der)
	if token, err = wrapKeyPadded(dk.block, der); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	if publicKey, err = x509.MarshalPKIXPublicKey(&key.PublicKey); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	return token, publicKey, nil
}

// SignWithKeyToken implements hsm.Backend.
func (b *Backend) SignWithKeyToken(ctx context.Context, dkID string, token, digest []byte) ([]byte, error) {
	const op = "sign with key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.SigningKeyToken(token); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if err := validate.Digest(digest); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	key, err := b.unwrapSigningKey(ctx, op, dkID, token)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	return sig, nil
}

func (b *Backend) unwrapSigningKey(ctx context.Context, op, dkID string, token []byte) (*ecdsa.PrivateKey, error) {
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	dk, err := b.domainKeyLocked(op, dkID)
	if err != nil {
		return nil, err
	}
	der, err := unwrapKeyPadded(dk.block, token)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: signing key token", hsm.ErrDecrypt)}
	}
	defer clear(der)
	key, err := parseSigningKey(der)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrInvalidInput, err)}
	}
	return key, nil
}

// parseSigningKey decodes the PKCS#8 P-256 key in an unwrapped token.
// SoftHSM 2.6 zero-pads the PKCS#8 encoding to a multiple of 8 bytes before
// wrapping it with CKM_AES_KEY_WRAP_PAD, so the RFC 5649 length covers the
// padding; up to 7 zero bytes after the DER are therefore accepted, and
// nothing else.
func parseSigningKey(der []byte) (*ecdsa.PrivateKey, error) {
	errNotP256 := errors.New("signing key token does not hold a P-256 private key")
	var outer asn1.RawValue
	rest, err := asn1.Unmarshal(der, &outer)
	if err != nil || len(rest) >= 8 {
		return nil, errNotP256
	}
	for _, c := range rest {
		if c != 0 {
			return nil, errNotP256
		}
	}
	parsed, err := x509.ParsePKCS8PrivateKey(outer.FullBytes)
	key, ok := parsed.(*ecdsa.PrivateKey)
	if err != nil || !ok || key.Curve != elliptic.P256() {
		return nil, errNotP256
	}
	return key, nil
}

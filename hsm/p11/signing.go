//go:build cgo

package p11

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// p256RawSignatureSize is r‖s, each zero-padded to 32 bytes, the form
// CKM_ECDSA returns.
const p256RawSignatureSize = 64

// p256PointSize is an uncompressed P-256 point: 0x04, X, Y.
const p256PointSize = 65

// GenerateSigningKeyToken implements hsm.Backend. The key pair exists as
// session objects only until the private key is wrapped.
func (b *Backend) GenerateSigningKeyToken(ctx context.Context, dkID string) (token, publicKey []byte, err error) {
	const op = "generate signing key token"
	if err := validate.DomainKeyID(dkID); err != nil {
		return nil, nil, &hsm.Error{Op: op, Err: err}
	}
	err = b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		public, private, err := b.p11.GenerateKeyPair(s, mechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil),
			signingPublicTemplate(), newSigningKeyTemplate())
		if err != nil {
			return deviceError(op, err)
		}
		defer b.destroy(s, public)
		defer b.destroy(s, private)
		if publicKey, err = b.ecPublicKeyDER(s, op, public); err != nil {
			return err
		}
		token, err = b.p11.WrapKey(s, keyWrapMechanism(), dk, private)
		if err != nil {
			return b.forgetStaleDomainKey(dkID, deviceError(op, err))
		}
		if validate.SigningKeyToken(token) != nil {
			return typedError(op, hsm.ErrUnavailable, "device produced a %d-byte signing key token", len(token))
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return token, publicKey, nil
}

// SignWithKeyToken implements hsm.Backend. The key is unwrapped for each
// call: a region signs once per replication batch, far too rarely for a
// cache to pay.
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
	var sig []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, dkID)
		if err != nil {
			return err
		}
		key, err := b.p11.UnwrapKey(s, keyWrapMechanism(), dk, token, residentSigningKeyTemplate())
		if err != nil {
			return b.forgetStaleDomainKey(dkID, integrityError(op, err))
		}
		defer b.destroy(s, key)
		if err := b.p11.SignInit(s, mechanism(pkcs11.CKM_ECDSA, nil), key); err != nil {
			return deviceError(op, err)
		}
		raw, err := b.p11.Sign(s, digest)
		if err != nil {
			return deviceError(op, err)
		}
		var ok bool
		if sig, ok = rawToASN1Signature(raw); !ok {
			return typedError(op, hsm.ErrInvalidInput, "signing key token does not hold a P-256 key")
		}
		return nil
	})
	return sig, err
}

// rawToASN1Signature converts CKM_ECDSA's r‖s into the DER SEQUENCE of two
// INTEGERs that crypto/ecdsa and X.509 use. A raw signature of another size
// comes from a key on another curve.
func rawToASN1Signature(raw []byte) ([]byte, bool) {
	if len(raw) != p256RawSignatureSize {
		return nil, false
	}
	half := len(raw) / 2
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(raw[:half]),
		new(big.Int).SetBytes(raw[half:]),
	})
	return der, err == nil
}

// ecPublicKeyDER reads a P-256 public key object as PKIX DER. CKA_EC_POINT
// is a DER OCTET STRING holding the uncompressed point (PKCS#11 2.40; what
// SoftHSM returns), though some devices return the bare point.
func (b *Backend) ecPublicKeyDER(s pkcs11.SessionHandle, op string, public pkcs11.ObjectHandle) ([]byte, error) {
	attrs, err := b.p11.GetAttributeValue(s, public, []*pkcs11.Attribute{attr(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, deviceError(op, err)
	}
	if len(attrs) != 1 {
		return nil, typedError(op, hsm.ErrUnavailable, "EC public key lacks its point")
	}
	// The two forms differ in length: both begin with 0x04 (the OCTET
	// STRING tag, and the uncompressed-point marker), so the tag alone
	// cannot tell them apart.
	point := attrs[0].Value
	if len(point) == 2+p256PointSize && point[0] == 0x04 && point[1] == p256PointSize {
		point = point[2:]
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, typedError(op, hsm.ErrUnavailable, "device returned an unusable P-256 public key")
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, typedError(op, hsm.ErrUnavailable, "encode EC public key: %w", err)
	}
	return der, nil
}

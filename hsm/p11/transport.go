//go:build cgo

package p11

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"math/big"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

const transportKeyBits = validate.TransportKeyBits

type transportKey struct {
	private   pkcs11.ObjectHandle
	publicDER []byte
}

// TransportPublicKey implements hsm.Backend.
func (b *Backend) TransportPublicKey(ctx context.Context) ([]byte, error) {
	const op = "transport public key"
	var der []byte
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		tk, err := b.transportKey(s, op, true)
		if err == nil {
			der = bytes.Clone(tk.publicDER)
		}
		return err
	})
	return der, err
}

// ExportDomainKey implements hsm.Backend.
func (b *Backend) ExportDomainKey(ctx context.Context, id string, peerPublicKey []byte) ([]byte, error) {
	const op = "export domain key"
	if err := validate.DomainKeyID(id); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	peer, err := validate.PeerTransportKey(peerPublicKey)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	var wrapped []byte
	err = b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		dk, err := b.domainKey(s, op, id)
		if err != nil {
			return err
		}
		wrapped, err = b.wrapToPeer(s, op, peer, dk)
		return b.forgetStaleDomainKey(id, err)
	})
	return wrapped, err
}

// wrapToPeer wraps key to a peer's transport public key with RSA-OAEP:
// everything that leaves for another node (a domain key, a batch's session
// key) does so this way. The peer key is a session object for this one
// C_WrapKey.
func (b *Backend) wrapToPeer(s pkcs11.SessionHandle, op string, peer *rsa.PublicKey, key pkcs11.ObjectHandle) ([]byte, error) {
	exponent := big.NewInt(int64(peer.E)).Bytes()
	peerKey, err := b.p11.CreateObject(s, peerPublicTemplate(peer.N.Bytes(), exponent))
	if err != nil {
		return nil, deviceError(op, err)
	}
	defer b.destroy(s, peerKey)
	wrapped, err := b.p11.WrapKey(s, oaepMechanism(), peerKey, key)
	if err != nil {
		return nil, deviceError(op, err)
	}
	return wrapped, nil
}

// unwrapFromPeer reverses a peer's wrapToPeer with this HSM's transport key
// into an object made from template, and refuses a key that is not size
// bytes (as far as checkKeyLength can tell). The caller destroys the
// object if it is a session object.
func (b *Backend) unwrapFromPeer(s pkcs11.SessionHandle, op string, wrapped []byte, template []*pkcs11.Attribute, size int) (pkcs11.ObjectHandle, error) {
	tk, err := b.transportKey(s, op, false)
	if err != nil {
		return 0, err
	}
	h, err := b.p11.UnwrapKey(s, oaepMechanism(), tk.private, wrapped, template)
	if err != nil {
		return 0, b.forgetStaleTransportKey(integrityError(op, err))
	}
	if err := b.checkKeyLength(s, op, h, size); err != nil {
		b.destroy(s, h)
		return 0, err
	}
	return h, nil
}

// ImportDomainKey implements hsm.Backend.
func (b *Backend) ImportDomainKey(ctx context.Context, id string, wrapped []byte) error {
	const op = "import domain key"
	if err := validate.DomainKeyID(id); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	if err := validate.WrappedDomainKey(wrapped); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	return b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		b.createMu.Lock()
		defer b.createMu.Unlock()
		if _, found, err := b.lookupDomainKey(s, op, id); err != nil || found {
			return err
		}
		h, err := b.unwrapFromPeer(s, op, wrapped, domainKeyTemplate(id, false), hsm.DomainKeySize)
		if err != nil {
			return err
		}
		b.rememberDomainKey(id, h)
		b.log.Info("hsm: domain key imported", "id", id)
		return nil
	})
}

// checkKeyLength refuses a well-wrapped key of the wrong size; the unwrap
// template cannot demand a size (C_UnwrapKey rejects CKA_VALUE_LEN). SoftHSM
// 2.6 leaves CKA_VALUE_LEN at 0 on unwrapped keys, so an unreported length
// passes: on such a device the check rests on the peer's export.
func (b *Backend) checkKeyLength(s pkcs11.SessionHandle, op string, h pkcs11.ObjectHandle, want int) error {
	attrs, err := b.p11.GetAttributeValue(s, h, []*pkcs11.Attribute{attr(pkcs11.CKA_VALUE_LEN, nil)})
	if err != nil {
		return deviceError(op, err)
	}
	if len(attrs) != 1 {
		return nil
	}
	if n := bytesToUint(attrs[0].Value); n != 0 && n != uint64(want) {
		return typedError(op, hsm.ErrInvalidInput, "unwrapped key is %d bytes, want %d", n, want)
	}
	return nil
}

// bytesToUint reads a CK_ULONG attribute, which comes back in host order.
func bytesToUint(v []byte) uint64 {
	switch len(v) {
	case 8:
		return binary.NativeEndian.Uint64(v)
	case 4:
		return uint64(binary.NativeEndian.Uint32(v))
	}
	return 0
}

// transportKey finds the transport key pair, generating it when create is
// set and there is none. Generation happens once per token, so it is
// serialized rather than made concurrent.
func (b *Backend) transportKey(s pkcs11.SessionHandle, op string, create bool) (*transportKey, error) {
	b.transportMu.Lock()
	defer b.transportMu.Unlock()
	if b.transport != nil {
		return b.transport, nil
	}
	private, havePrivate, err := b.findOne(s, op, transportLookup(pkcs11.CKO_PRIVATE_KEY))
	if err != nil {
		return nil, err
	}
	public, havePublic, err := b.findOne(s, op, transportLookup(pkcs11.CKO_PUBLIC_KEY))
	if err != nil {
		return nil, err
	}
	switch {
	case havePrivate && havePublic:
	case havePrivate || havePublic:
		return nil, typedError(op, hsm.ErrUnavailable, "token holds half a transport key pair; remove the objects labelled %q", transportLabel)
	case !create:
		return nil, typedError(op, hsm.ErrNotFound, "no transport key pair yet")
	default:
		public, private, err = b.p11.GenerateKeyPair(s, mechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil),
			transportPublicTemplate(), transportPrivateTemplate())
		if err != nil {
			return nil, deviceError(op, err)
		}
		b.log.Info("hsm: transport key pair generated", "bits", transportKeyBits)
	}
	der, err := b.publicKeyDER(s, op, public)
	if err != nil {
		return nil, err
	}
	b.transport = &transportKey{private: private, publicDER: der}
	return b.transport, nil
}

// forgetStaleTransportKey drops a cached transport key handle the device
// no longer recognizes, so the retry the error invites looks it up afresh.
func (b *Backend) forgetStaleTransportKey(err error) error {
	if staleHandle(err) {
		b.transportMu.Lock()
		b.transport = nil
		b.transportMu.Unlock()
	}
	return err
}

func (b *Backend) publicKeyDER(s pkcs11.SessionHandle, op string, public pkcs11.ObjectHandle) ([]byte, error) {
	attrs, err := b.p11.GetAttributeValue(s, public, []*pkcs11.Attribute{
		attr(pkcs11.CKA_MODULUS, nil),
		attr(pkcs11.CKA_PUBLIC_EXPONENT, nil),
	})
	if err != nil {
		return nil, deviceError(op, err)
	}
	if len(attrs) != 2 {
		return nil, typedError(op, hsm.ErrUnavailable, "transport public key lacks modulus or exponent")
	}
	exponent := new(big.Int).SetBytes(attrs[1].Value)
	if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 {
		return nil, typedError(op, hsm.ErrUnavailable, "transport public key has an unusable exponent")
	}
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(exponent.Int64())})
	if err != nil {
		return nil, typedError(op, hsm.ErrUnavailable, "encode transport public key: %w", err)
	}
	return der, nil
}

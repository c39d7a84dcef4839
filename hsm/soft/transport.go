package soft

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"fmt"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// Domain keys and session keys travel under RSA-OAEP with SHA-1 and MGF1-SHA1 and an empty
// label: the only OAEP SoftHSM 2.6 offers for C_WrapKey, which this backend
// must match. OAEP's security does not rest on SHA-1's collision resistance.

// TransportPublicKey implements hsm.Backend.
func (b *Backend) TransportPublicKey(ctx context.Context) ([]byte, error) {
	const op = "transport public key"
	key, err := b.transportKey(ctx, op, true)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	return der, nil
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
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	dk, err := b.domainKeyLocked(op, id)
	if err != nil {
		return nil, err
	}
	return wrapToPeer(op, peer, dk.secret.Bytes())
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
	if have, err := b.HasDomainKey(ctx, id); err != nil || have {
		return err
	}
	key, err := b.transportKey(ctx, op, false)
	if err != nil {
		return err
	}
	dk, err := unwrapFromPeer(op, key, "domain key", wrapped, hsm.DomainKeySize)
	if err != nil {
		return err
	}
	defer clear(dk)
	if err := b.addDomainKey(ctx, op, id, dk, true); err != nil {
		return err
	}
	b.log.Info("hsm: domain key imported", "id", id)
	return nil
}

// wrapToPeer wraps key to a peer's transport public key: everything that
// leaves for another node (a domain key, a batch's session key) does so this
// way, so the PKCS#11 backend can unwrap what this one wraps and the other
// way round.
func wrapToPeer(op string, peer *rsa.PublicKey, key []byte) ([]byte, error) {
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, peer, key, nil)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrInvalidInput, err)}
	}
	return wrapped, nil
}

// unwrapFromPeer reverses a peer's wrapToPeer with this node's transport
// private key (nil before there is one) and checks that the key is size
// bytes. what names the key in errors. The caller clears the result.
func unwrapFromPeer(op string, transport *rsa.PrivateKey, what string, wrapped []byte, size int) ([]byte, error) {
	if transport == nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: no transport key pair yet", hsm.ErrNotFound)}
	}
	key, err := rsa.DecryptOAEP(sha1.New(), nil, transport, wrapped, nil)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: wrapped %s", hsm.ErrDecrypt, what)}
	}
	if len(key) != size {
		clear(key)
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: unwrapped %s is not %d bytes", hsm.ErrInvalidInput, what, size)}
	}
	return key, nil
}

// transportKey returns the transport private key, generating and persisting
// it when create is set and there is none.
func (b *Backend) transportKey(ctx context.Context, op string, create bool) (*rsa.PrivateKey, error) {
	if key, err := b.currentTransportKey(ctx, op); key != nil || err != nil {
		return key, err
	}
	if !create {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: no transport key pair yet", hsm.ErrNotFound)}
	}
	b.transportGen.Lock()
	defer b.transportGen.Unlock()
	if key, err := b.currentTransportKey(ctx, op); key != nil || err != nil {
		return key, err
	}
	key, err := rsa.GenerateKey(rand.Reader, validate.TransportKeyBits)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: backend closed", hsm.ErrUnavailable)}
	}
	b.transport = key
	if err := b.persistLocked(); err != nil {
		b.transport = nil
		return nil, &hsm.Error{Op: op, Err: err}
	}
	b.log.Info("hsm: transport key pair generated", "bits", validate.TransportKeyBits)
	return key, nil
}

func (b *Backend) currentTransportKey(ctx context.Context, op string) (*rsa.PrivateKey, error) {
	if err := b.begin(ctx, op); err != nil {
		return nil, err
	}
	defer b.mu.RUnlock()
	return b.transport, nil
}

package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/hsm"
)

const (
	protectionSoftware = crypto.ProtectionLevelSoftware
	protectionHSM      = crypto.ProtectionLevelHSM
)

// usableForCrypto refuses keys whose state or usage forbid cryptographic use,
// with the error AWS KMS gives for each case.
func usableForCrypto(k *fsmpb.Key) error {
	switch k.GetState() {
	case fsmpb.KeyState_KEY_STATE_ENABLED:
	case fsmpb.KeyState_KEY_STATE_DISABLED:
		return fmt.Errorf("%w: key %s is disabled", ErrDisabled, k.GetKeyId())
	default:
		return fmt.Errorf("%w: key %s is %s", fsm.ErrInvalidState, k.GetKeyId(), keyStateName(k.GetState()))
	}
	if k.GetKeyUsage() != crypto.KeyUsageEncryptDecrypt {
		return fmt.Errorf("%w: key %s has usage %s; this operation needs %s", ErrInvalidKeyUsage, k.GetKeyId(), k.GetKeyUsage(), crypto.KeyUsageEncryptDecrypt)
	}
	return nil
}

// seal encrypts plaintext under the key's current version, binding ec.
func (s *Server) seal(ctx context.Context, k *fsmpb.Key, plaintext []byte, ec map[string]string) ([]byte, error) {
	v := fsm.CurrentVersion(k)
	if v == nil {
		return nil, fmt.Errorf("%w: key %s has no key material", fsm.ErrInvalidState, k.GetKeyId())
	}
	noteVersion(ctx, k.GetKeyId(), v.GetVersionId())
	var versionID [16]byte
	copy(versionID[:], v.GetVersionId())
	h, err := crypto.NewHeader(k.GetKeyId(), versionID, rand.Reader)
	if err != nil {
		return nil, err
	}
	if k.GetProtectionLevel() == protectionHSM {
		header, err := h.AppendBinary(nil)
		if err != nil {
			return nil, err
		}
		sealed, err := s.hsm.Seal(ctx, v.GetDomainKeyId(), v.GetKeyToken(), h.Salt[:], h.Nonce[:], plaintext, crypto.AssociatedData(header, ec))
		if err != nil {
			return nil, fmt.Errorf("seal in HSM: %w", err)
		}
		return append(header, sealed...), nil
	}
	entry, err := s.backingKey(ctx, v)
	if err != nil {
		return nil, err
	}
	defer entry.release()
	return crypto.Seal(entry.secret, h, plaintext, ec)
}

// opened is a verified ciphertext: its key, version and plaintext.
type opened struct {
	key       *fsmpb.Key
	version   *fsmpb.KeyVersion
	plaintext *crypto.Secret
}

// sealedBlob is a parsed ciphertext whose key exists, matches what the
// caller named, and may be used by the caller.
type sealedBlob struct {
	c       *crypto.Ciphertext
	key     *fsmpb.Key
	version *fsmpb.KeyVersion
}

// open parses, authorizes and decrypts a ciphertext blob (locate, then
// decrypt).
func (s *Server) open(ctx context.Context, blob []byte, ec map[string]string, wantKeyRef, keyField string, a access) (*opened, error) {
	b, err := s.locate(ctx, blob, ec, wantKeyRef, keyField, a)
	if err != nil {
		return nil, err
	}
	return s.decrypt(ctx, b, ec)
}

// locate parses a ciphertext blob and finds its key and version.
// wantKeyRef, if set, must name the key the ciphertext was made under. The
// key's state is checked after the blob is known to be well formed, so a
// garbage blob gets InvalidCiphertextException whatever the key. a names the
// action and the grant tokens: the caller is authorized on the key the
// header names, so nothing is decrypted for a caller who may not.
func (s *Server) locate(ctx context.Context, blob []byte, ec map[string]string, wantKeyRef, keyField string, a access) (*sealedBlob, error) {
	if len(blob) == 0 {
		return nil, invalid("CiphertextBlob", "is required")
	}
	c, err := crypto.ParseCiphertext(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCiphertext, err)
	}
	k, ok := s.fsm.Key(c.KeyID)
	if !ok {
		return nil, fmt.Errorf("%w: the ciphertext was made under key %s, which does not exist in this region", ErrInvalidCiphertext, c.KeyID)
	}
	noteKey(ctx, k.GetKeyId()) // audited as the key acted on even if the ciphertext fails to open
	if wantKeyRef != "" {
		want, alias, err := s.resolveKeyVia(ctx, keyField, wantKeyRef)
		if err != nil {
			return nil, err
		}
		if want.GetKeyId() != k.GetKeyId() {
			return nil, fmt.Errorf("%w: the ciphertext was made under key %s, not %s", ErrIncorrectKey, k.GetKeyId(), want.GetKeyId())
		}
		a.alias = alias
	}
	a.key, a.ec = k, ec
	if err := s.authorize(ctx, a); err != nil {
		return nil, err
	}
	if err := usableForCrypto(k); err != nil {
		return nil, err
	}
	v, ok := fsm.FindVersion(k, c.VersionID[:])
	if !ok {
		return nil, fmt.Errorf("%w: key %s has no key material %x", ErrInvalidCiphertext, k.GetKeyId(), c.VersionID)
	}
	noteVersion(ctx, k.GetKeyId(), v.GetVersionId())
	return &sealedBlob{c: c, key: k, version: v}, nil
}

// decrypt opens a located ciphertext under ec.
func (s *Server) decrypt(ctx context.Context, b *sealedBlob, ec map[string]string) (*opened, error) {
	c, k, v := b.c, b.key, b.version
	var pt *crypto.Secret
	var err error
	if k.GetProtectionLevel() == protectionHSM {
		var header []byte
		if header, err = c.Header.AppendBinary(nil); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidCiphertext, err)
		}
		pt, err = s.hsm.Open(ctx, v.GetDomainKeyId(), v.GetKeyToken(), c.Salt[:], c.Nonce[:], c.Sealed, crypto.AssociatedData(header, ec))
		if errors.Is(err, hsm.ErrDecrypt) {
			err = fmt.Errorf("%w: %v", ErrInvalidCiphertext, crypto.ErrDecrypt)
		}
	} else {
		var entry *cachedKey
		if entry, err = s.backingKey(ctx, v); err != nil {
			return nil, err
		}
		pt, err = crypto.Open(entry.secret, c, ec)
		entry.release()
		if errors.Is(err, crypto.ErrDecrypt) {
			err = fmt.Errorf("%w: %v", ErrInvalidCiphertext, err)
		}
	}
	if err != nil {
		return nil, err
	}
	return &opened{key: k, version: v, plaintext: pt}, nil
}

// backingKey returns the unwrapped backing key of a SOFTWARE-level version,
// asking the HSM only on a cache miss. The caller releases the entry.
func (s *Server) backingKey(ctx context.Context, v *fsmpb.KeyVersion) (*cachedKey, error) {
	if e, ok := s.keys.get(v.GetVersionId()); ok {
		return e, nil
	}
	secret, err := s.hsm.UnwrapKeyToken(ctx, v.GetDomainKeyId(), v.GetKeyToken())
	if err != nil {
		return nil, fmt.Errorf("unwrap key token: %w", err)
	}
	return s.keys.put(v.GetVersionId(), secret), nil
}

func validateAlgorithm(field, alg string) error {
	if alg != "" && alg != crypto.EncryptionAlgorithmSymmetricDefault {
		return invalid(field, "%q is not supported; use %s", alg, crypto.EncryptionAlgorithmSymmetricDefault)
	}
	return nil
}

func validateContext(field string, ec map[string]string) error {
	if err := crypto.ValidateContext(ec); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

package soft

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
)

// The key store is one file:
//
//	magic "TRENTKS1" | salt (32) | nonce (12) | AES-256-GCM(contents)
//
// The GCM key is HKDF-SHA256(unseal secret, salt, storeKDFInfo). Magic and
// salt are the associated data, so neither can be swapped. A fresh nonce is
// drawn for every write; the store is rewritten only when a domain key or the
// transport key is added, far below GCM's random-nonce limit.
const (
	storeFileName  = "keystore.sealed"
	storeSaltSize  = 32
	storeNonceSize = 12
	storeKDFInfo   = "trent soft-hsm key store v1"
)

var storeMagic = []byte("TRENTKS1")

const storeHeaderSize = 8 + storeSaltSize

// storeContents is what the sealed file holds.
type storeContents struct {
	DomainKeys map[string][]byte `json:"domain_keys"`
	// TransportKey is the transport private key, PKCS#8 DER; empty until
	// first needed.
	TransportKey []byte `json:"transport_key,omitempty"`
}

func (c *storeContents) zero() {
	for _, k := range c.DomainKeys {
		clear(k)
	}
	clear(c.TransportKey)
}

// keyStore reads and writes the sealed file.
type keyStore struct {
	path   string
	header []byte
	aead   cipher.AEAD
}

// openKeyStore opens the store in dir with secret, creating an empty one if
// there is none. A secret that does not open an existing store is ErrSealed.
func openKeyStore(dir string, secret *crypto.Secret) (*keyStore, *storeContents, error) {
	path := filepath.Join(dir, storeFileName)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyStore(path, secret)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read key store: %w", hsm.ErrUnavailable, err)
	}
	if len(raw) < storeHeaderSize+storeNonceSize+16 || !bytes.Equal(raw[:len(storeMagic)], storeMagic) {
		return nil, nil, fmt.Errorf("%w: %s is not a Trent key store", hsm.ErrInvalidInput, path)
	}
	ks, err := newKeyStore(path, raw[:storeHeaderSize:storeHeaderSize], secret)
	if err != nil {
		return nil, nil, err
	}
	nonce := raw[storeHeaderSize : storeHeaderSize+storeNonceSize]
	plain, err := ks.aead.Open(nil, nonce, raw[storeHeaderSize+storeNonceSize:], ks.header)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the unseal secret does not open %s", hsm.ErrSealed, path)
	}
	defer clear(plain)
	var contents storeContents
	if err := json.Unmarshal(plain, &contents); err != nil {
		return nil, nil, fmt.Errorf("%w: key store contents do not decode", hsm.ErrInvalidInput)
	}
	if contents.DomainKeys == nil {
		contents.DomainKeys = make(map[string][]byte)
	}
	return ks, &contents, nil
}

func createKeyStore(path string, secret *crypto.Secret) (*keyStore, *storeContents, error) {
	header := make([]byte, storeHeaderSize)
	copy(header, storeMagic)
	if _, err := rand.Read(header[len(storeMagic):]); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)
	}
	ks, err := newKeyStore(path, header, secret)
	if err != nil {
		return nil, nil, err
	}
	contents := &storeContents{DomainKeys: make(map[string][]byte)}
	// Write the empty store at once: it binds the directory to this secret,
	// so a later start with another secret fails instead of starting empty.
	if err := ks.save(contents); err != nil {
		return nil, nil, err
	}
	return ks, contents, nil
}

func newKeyStore(path string, header []byte, secret *crypto.Secret) (*keyStore, error) {
	key, err := hkdf.Key(sha256.New, secret.Bytes(), header[len(storeMagic):], storeKDFInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: derive key store key: %w", hsm.ErrInvalidInput, err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &keyStore{path: path, header: bytes.Clone(header), aead: aead}, nil
}

// save seals contents and replaces the file atomically.
func (ks *keyStore) save(contents *storeContents) error {
	plain, err := json.Marshal(contents)
	if err != nil {
		return fmt.Errorf("%w: encode key store: %w", hsm.ErrUnavailable, err)
	}
	defer clear(plain)
	out := make([]byte, storeHeaderSize+storeNonceSize, storeHeaderSize+storeNonceSize+len(plain)+ks.aead.Overhead())
	copy(out, ks.header)
	nonce := out[storeHeaderSize:]
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)
	}
	out = ks.aead.Seal(out, nonce, plain, ks.header)
	if err := writeFileAtomic(ks.path, out); err != nil {
		return fmt.Errorf("%w: write key store: %w", hsm.ErrUnavailable, err)
	}
	return nil
}

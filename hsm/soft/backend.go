// Package soft is a pure-Go software HSM with the semantics of the PKCS#11
// backend, for development and tests. Its domain keys and transport private
// key live in one sealed file (see store.go) opened with an unseal secret;
// the algorithms are those of hsm/p11, so tokens and wrapped domain keys move
// between the two.
//
// It offers no protection against someone who can read the process memory or
// both the store and the unseal secret: use PKCS#11 in production.
package soft

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/keycache"
)

// DefaultKeyCacheSize bounds the backing keys Seal/Open keep unwrapped.
const DefaultKeyCacheSize = 1024

// Config locates and unseals the key store.
type Config struct {
	// Dir holds the key store file; created (0700) if missing.
	Dir string
	// UnsealSecret opens the key store; at least 16 bytes. Open does not
	// keep or zero it.
	UnsealSecret *crypto.Secret
	// KeyCacheSize bounds the backing keys kept unwrapped for Seal/Open
	// (default 1024); evicted keys are zeroed.
	KeyCacheSize int
	// Logger receives operational events; nil discards them.
	Logger *slog.Logger
}

// Backend is the software HSM.
type Backend struct {
	log   *slog.Logger
	store *keyStore

	// mu guards the keys and closed; writers also hold it across the store
	// write, so memory and file never disagree.
	mu         sync.RWMutex
	closed     bool
	domainKeys map[string]*domainKey
	transport  *rsa.PrivateKey
	// transportGen serializes transport key generation, which is slow and
	// must not hold mu.
	transportGen sync.Mutex

	backingKeys *keycache.Cache[*crypto.Secret]
}

type domainKey struct {
	secret *crypto.Secret
	block  cipher.Block
}

var _ hsm.Backend = (*Backend)(nil)

// Open unseals the key store in cfg.Dir, creating an empty one on first use.
// A wrong unseal secret fails with hsm.ErrSealed.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	const op = "open"
	if err := ctx.Err(); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if cfg.Dir == "" {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: no key store directory configured", hsm.ErrInvalidInput)}
	}
	if cfg.UnsealSecret.Len() < MinUnsealSecretSize {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: unseal secret shorter than %d bytes", hsm.ErrInvalidInput, MinUnsealSecretSize)}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cacheSize := cfg.KeyCacheSize
	if cacheSize <= 0 {
		cacheSize = DefaultKeyCacheSize
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)}
	}
	store, contents, err := openKeyStore(cfg.Dir, cfg.UnsealSecret)
	if err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	defer contents.zero()
	b := &Backend{
		log:         log,
		store:       store,
		domainKeys:  make(map[string]*domainKey, len(contents.DomainKeys)),
		backingKeys: keycache.New[*crypto.Secret](cacheSize),
	}
	for id, key := range contents.DomainKeys {
		dk, err := newDomainKey(key)
		if err != nil {
			b.Close()
			return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: domain key %q in the key store: %w", hsm.ErrInvalidInput, id, err)}
		}
		b.domainKeys[id] = dk
	}
	if len(contents.TransportKey) > 0 {
		key, err := x509.ParsePKCS8PrivateKey(contents.TransportKey)
		rsaKey, ok := key.(*rsa.PrivateKey)
		if err != nil || !ok {
			b.Close()
			return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: transport key in the key store does not decode", hsm.ErrInvalidInput)}
		}
		b.transport = rsaKey
	}
	log.Info("hsm: software key store opened", "dir", cfg.Dir, "domain_keys", len(b.domainKeys))
	return b, nil
}

// newDomainKey copies key, which the caller keeps and zeroes.
func newDomainKey(key []byte) (*domainKey, error) {
	if len(key) != hsm.DomainKeySize {
		return nil, fmt.Errorf("domain key is %d bytes, want %d", len(key), hsm.DomainKeySize)
	}
	secret := crypto.NewSecret(append([]byte(nil), key...))
	block, err := aes.NewCipher(secret.Bytes())
	if err != nil {
		return nil, err
	}
	return &domainKey{secret: secret, block: block}, nil
}

// Kind implements hsm.Backend.
func (b *Backend) Kind() string { return "software" }

// contentsLocked snapshots the keys for a store write; mu must be held.
// The caller zeroes the result.
func (b *Backend) contentsLocked() (*storeContents, error) {
	c := &storeContents{DomainKeys: make(map[string][]byte, len(b.domainKeys))}
	for id, dk := range b.domainKeys {
		c.DomainKeys[id] = append([]byte(nil), dk.secret.Bytes()...)
	}
	if b.transport != nil {
		der, err := x509.MarshalPKCS8PrivateKey(b.transport)
		if err != nil {
			return nil, err
		}
		c.TransportKey = der
	}
	return c, nil
}

// begin checks ctx and that the backend is open; it returns with mu
// read-locked on success.
func (b *Backend) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return &hsm.Error{Op: op, Err: fmt.Errorf("%w: backend closed", hsm.ErrUnavailable)}
	}
	return nil
}

// Close implements hsm.Backend: it zeroes the domain keys and the cached
// backing keys.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for _, dk := range b.domainKeys {
		dk.secret.Zero()
	}
	b.domainKeys = nil
	b.transport = nil
	for _, k := range b.backingKeys.Drain() {
		k.Zero()
	}
	b.log.Info("hsm: software key store closed")
	return nil
}

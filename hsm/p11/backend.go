//go:build cgo

package p11

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/keycache"
)

const (
	maxTokenLabelLen = 32 // CK_TOKEN_INFO.label
	maxPINFileSize   = 1024
)

// Backend is a PKCS#11 token used as this node's HSM.
type Backend struct {
	log    *slog.Logger
	module *module
	p11    *pkcs11.Ctx
	pool   *sessionPool

	// createMu serializes creating persistent objects, so two concurrent
	// creates of one id cannot both pass the existence check.
	createMu sync.Mutex

	domainKeysMu sync.RWMutex
	domainKeys   map[string]pkcs11.ObjectHandle

	transportMu sync.Mutex
	transport   *transportKey

	backingKeys *keycache.Cache[sessionKey]
	closeOnce   sync.Once
}

// sessionKey is a backing key unwrapped into the HSM as a session object;
// it lives only as long as the session that created it.
type sessionKey struct {
	handle  pkcs11.ObjectHandle
	session pkcs11.SessionHandle
}

var _ hsm.Backend = (*Backend)(nil)

// Open loads cfg.Library, finds the token labelled cfg.TokenLabel and logs
// in with the PIN from cfg.PINFile.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	const op = "open"
	if err := ctx.Err(); err != nil {
		return nil, &hsm.Error{Op: op, Err: err}
	}
	if len(cfg.TokenLabel) == 0 || len(cfg.TokenLabel) > maxTokenLabelLen {
		return nil, typedError(op, hsm.ErrInvalidInput, "token label must be 1 to %d bytes", maxTokenLabelLen)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	poolSize := cfg.PoolSize
	if poolSize <= 0 {
		poolSize = DefaultPoolSize
	}
	cacheSize := cfg.KeyCacheSize
	if cacheSize <= 0 {
		cacheSize = DefaultKeyCacheSize
	}
	pin, err := readPIN(op, cfg.PINFile)
	if err != nil {
		return nil, err
	}
	m, err := acquireModule(op, cfg.Library)
	if err != nil {
		pin.Zero()
		return nil, err
	}
	slot, err := findTokenSlot(m.ctx, op, cfg.TokenLabel)
	if err != nil {
		pin.Zero()
		releaseModule(m)
		return nil, err
	}
	b := &Backend{
		log:         log,
		module:      m,
		p11:         m.ctx,
		pool:        newSessionPool(m.ctx, slot, pin, poolSize, log),
		domainKeys:  make(map[string]pkcs11.ObjectHandle),
		backingKeys: keycache.New[sessionKey](cacheSize),
	}
	b.pool.onDiscard = b.forgetHandles
	// Log in now, so a wrong PIN or a missing token fails Open rather than
	// the first request.
	if err := b.withSession(ctx, op, func(pkcs11.SessionHandle) error { return nil }); err != nil {
		b.Close()
		return nil, err
	}
	log.Info("hsm: PKCS#11 token opened", "library", cfg.Library, "token", cfg.TokenLabel, "slot", slot, "sessions", poolSize)
	return b, nil
}

// readPIN keeps the PIN out of every error: only the file's path is named.
func readPIN(op, path string) (*crypto.Secret, error) {
	if path == "" {
		return nil, typedError(op, hsm.ErrInvalidInput, "no PIN file configured")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, typedError(op, hsm.ErrInvalidInput, "read PIN file: %w", err)
	}
	defer clear(raw)
	trimmed := bytes.TrimRight(raw, "\r\n")
	if len(trimmed) == 0 || len(trimmed) > maxPINFileSize {
		return nil, typedError(op, hsm.ErrInvalidInput, "PIN file %q must hold a PIN of 1 to %d bytes", path, maxPINFileSize)
	}
	return crypto.NewSecret(bytes.Clone(trimmed)), nil
}

// findTokenSlot locates the token by label: slot numbers are not stable
// (SoftHSM assigns them at random on token creation).
func findTokenSlot(p11 *pkcs11.Ctx, op, label string) (uint, error) {
	slots, err := p11.GetSlotList(true)
	if err != nil {
		return 0, deviceError(op, err)
	}
	var matches []uint
	for _, slot := range slots {
		info, err := p11.GetTokenInfo(slot)
		if err != nil {
			continue // a slot whose token vanished is not ours
		}
		if info.Label == label && info.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			matches = append(matches, slot)
		}
	}
	switch len(matches) {
	case 0:
		return 0, &hsm.Error{Op: op, Retryable: true, Err: fmt.Errorf("%w: no token labelled %q", hsm.ErrUnavailable, label)}
	case 1:
		return matches[0], nil
	default:
		return 0, typedError(op, hsm.ErrInvalidInput, "%d tokens labelled %q", len(matches), label)
	}
}

// Kind implements hsm.Backend.
func (b *Backend) Kind() string { return "pkcs11" }

// withSession runs fn on a pooled session. fn returns typed errors, which
// also tell the pool whether the session survived.
func (b *Backend) withSession(ctx context.Context, op string, fn func(s pkcs11.SessionHandle) error) error {
	s, err := b.pool.acquire(ctx, op)
	if err != nil {
		return err
	}
	err = fn(s)
	b.pool.release(s, err)
	return err
}

// findOne returns the single object matching template.
func (b *Backend) findOne(s pkcs11.SessionHandle, op string, template []*pkcs11.Attribute) (pkcs11.ObjectHandle, bool, error) {
	if err := b.p11.FindObjectsInit(s, template); err != nil {
		return 0, false, deviceError(op, err)
	}
	handles, _, err := b.p11.FindObjects(s, 2)
	if finalErr := b.p11.FindObjectsFinal(s); err == nil {
		err = finalErr
	}
	if err != nil {
		return 0, false, deviceError(op, err)
	}
	switch len(handles) {
	case 0:
		return 0, false, nil
	case 1:
		return handles[0], true, nil
	default:
		return 0, false, typedError(op, hsm.ErrExists, "more than one object matches %s", describe(template))
	}
}

func describe(template []*pkcs11.Attribute) string {
	for _, a := range template {
		if a.Type == pkcs11.CKA_LABEL {
			return fmt.Sprintf("label %q", a.Value)
		}
	}
	return "the template"
}

func (b *Backend) destroy(s pkcs11.SessionHandle, h pkcs11.ObjectHandle) {
	if err := b.p11.DestroyObject(s, h); err != nil {
		b.log.Warn("hsm: destroying session object failed", "error", deviceError("destroy object", err))
	}
}

// Close implements hsm.Backend. It waits for calls in progress.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.pool.close(func(s pkcs11.SessionHandle) {
			for _, k := range b.backingKeys.Drain() {
				b.destroy(s, k.handle)
			}
		})
		b.pool.pin.Zero()
		releaseModule(b.module)
		b.log.Info("hsm: PKCS#11 token closed")
	})
	return nil
}

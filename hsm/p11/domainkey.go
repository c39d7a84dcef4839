//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/internal/validate"
)

// CreateDomainKey implements hsm.Backend.
func (b *Backend) CreateDomainKey(ctx context.Context, id string) error {
	const op = "create domain key"
	if err := validate.DomainKeyID(id); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	return b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		b.createMu.Lock()
		defer b.createMu.Unlock()
		_, found, err := b.lookupDomainKey(s, op, id)
		if err != nil {
			return err
		}
		if found {
			return typedError(op, hsm.ErrExists, "domain key %q", id)
		}
		h, err := b.p11.GenerateKey(s, mechanism(pkcs11.CKM_AES_KEY_GEN, nil), domainKeyTemplate(id, true))
		if err != nil {
			return deviceError(op, err)
		}
		b.rememberDomainKey(id, h)
		b.log.Info("hsm: domain key created", "id", id)
		return nil
	})
}

// HasDomainKey implements hsm.Backend.
func (b *Backend) HasDomainKey(ctx context.Context, id string) (bool, error) {
	const op = "has domain key"
	if err := validate.DomainKeyID(id); err != nil {
		return false, &hsm.Error{Op: op, Err: err}
	}
	var found bool
	err := b.withSession(ctx, op, func(s pkcs11.SessionHandle) error {
		var err error
		_, found, err = b.lookupDomainKey(s, op, id)
		return err
	})
	return found, err
}

// domainKey returns the handle of domain key id, or ErrNotFound.
func (b *Backend) domainKey(s pkcs11.SessionHandle, op, id string) (pkcs11.ObjectHandle, error) {
	h, found, err := b.lookupDomainKey(s, op, id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, typedError(op, hsm.ErrNotFound, "domain key %q", id)
	}
	return h, nil
}

// lookupDomainKey caches handles: a token object's handle stays valid while
// the library is initialized, and a search costs a device round trip.
func (b *Backend) lookupDomainKey(s pkcs11.SessionHandle, op, id string) (pkcs11.ObjectHandle, bool, error) {
	b.domainKeysMu.RLock()
	h, ok := b.domainKeys[id]
	b.domainKeysMu.RUnlock()
	if ok {
		return h, true, nil
	}
	h, found, err := b.findOne(s, op, domainKeyLookup(id))
	if err != nil || !found {
		return 0, false, err
	}
	b.rememberDomainKey(id, h)
	return h, true, nil
}

func (b *Backend) rememberDomainKey(id string, h pkcs11.ObjectHandle) {
	b.domainKeysMu.Lock()
	b.domainKeys[id] = h
	b.domainKeysMu.Unlock()
}

// forgetStaleDomainKey drops a cached handle the device no longer
// recognizes (the object was deleted behind our back), so the retry the
// error invites looks it up afresh.
func (b *Backend) forgetStaleDomainKey(id string, err error) error {
	if staleHandle(err) {
		b.domainKeysMu.Lock()
		delete(b.domainKeys, id)
		b.domainKeysMu.Unlock()
	}
	return err
}

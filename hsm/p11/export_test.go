//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"
)

// Hooks into the session pool and the device for p11_test.go, which cannot
// live in this package: it uses hsmtest, which imports this package.

// HoldSessionForTest takes a pooled session until release is called.
func HoldSessionForTest(ctx context.Context, b *Backend) (release func(), err error) {
	s, err := b.pool.acquire(ctx, "test")
	if err != nil {
		return nil, err
	}
	return func() { b.pool.release(s, nil) }, nil
}

// CloseSessionsBehindPoolForTest closes every pooled session on the device
// while the pool still believes them open, as a device reset would.
func CloseSessionsBehindPoolForTest(ctx context.Context, b *Backend) error {
	var held []pkcs11.SessionHandle
	defer func() {
		for _, s := range held {
			b.pool.release(s, nil)
		}
	}()
	for range cap(b.pool.idle) {
		s, err := b.pool.acquire(ctx, "test")
		if err != nil {
			return err
		}
		held = append(held, s)
	}
	for _, s := range held {
		if err := b.p11.CloseSession(s); err != nil {
			return err
		}
	}
	return nil
}

// SessionObjectCountForTest counts the session (non-token) objects
// visible to this application, to catch leaked handles.
func SessionObjectCountForTest(ctx context.Context, b *Backend) (int, error) {
	count := 0
	err := b.withSession(ctx, "test", func(s pkcs11.SessionHandle) error {
		if err := b.p11.FindObjectsInit(s, []*pkcs11.Attribute{attr(pkcs11.CKA_TOKEN, false)}); err != nil {
			return deviceError("test", err)
		}
		defer func() { _ = b.p11.FindObjectsFinal(s) }()
		for {
			found, _, err := b.p11.FindObjects(s, 100)
			if err != nil {
				return deviceError("test", err)
			}
			if len(found) == 0 {
				return nil
			}
			count += len(found)
		}
	})
	return count, err
}

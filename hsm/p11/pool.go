//go:build cgo

package p11

import (
	"context"
	"log/slog"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
)

// noSession marks a pool slot whose session is not open (yet, or any more);
// CK_INVALID_HANDLE is 0, so no real session has this handle.
const noSession pkcs11.SessionHandle = 0

// sessionPool lends logged-in read-write sessions, one caller at a time per
// session as PKCS#11 requires. It holds a fixed number of slots; a slot's
// session is opened on first use and replaced after a failure that leaves it
// unusable, so a device hiccup costs one retry rather than the pool.
type sessionPool struct {
	p11       *pkcs11.Ctx
	slot      uint
	pin       *crypto.Secret
	log       *slog.Logger
	idle      chan pkcs11.SessionHandle
	closing   chan struct{}
	closeOnce sync.Once
	// onDiscard is told which session closed, so session objects it
	// created can be forgotten.
	onDiscard func(pkcs11.SessionHandle)
}

func newSessionPool(p11 *pkcs11.Ctx, slot uint, pin *crypto.Secret, size int, log *slog.Logger) *sessionPool {
	p := &sessionPool{
		p11:       p11,
		slot:      slot,
		pin:       pin,
		log:       log,
		idle:      make(chan pkcs11.SessionHandle, size),
		closing:   make(chan struct{}),
		onDiscard: func(pkcs11.SessionHandle) {},
	}
	for range size {
		p.idle <- noSession
	}
	return p
}

// acquire waits for a free session until ctx ends or the pool closes.
func (p *sessionPool) acquire(ctx context.Context, op string) (pkcs11.SessionHandle, error) {
	if err := ctx.Err(); err != nil {
		return noSession, &hsm.Error{Op: op, Err: err}
	}
	select {
	case <-ctx.Done():
		return noSession, &hsm.Error{Op: op, Err: ctx.Err()}
	case <-p.closing:
		return noSession, closedError(op)
	case s := <-p.idle:
		select {
		case <-p.closing:
			p.idle <- s
			return noSession, closedError(op)
		default:
		}
		if s != noSession {
			return s, nil
		}
		s, err := p.open(op)
		if err != nil {
			p.idle <- noSession
			return noSession, err
		}
		return s, nil
	}
}

// release returns s; opErr is the typed result of the work done on it.
func (p *sessionPool) release(s pkcs11.SessionHandle, opErr error) {
	if opErr == nil || !sessionBroken(opErr) {
		p.idle <- s
		return
	}
	p.log.Warn("hsm: discarding PKCS#11 session", "error", opErr)
	p.discard(s)
	p.idle <- noSession
	p.sweep()
}

func (p *sessionPool) discard(s pkcs11.SessionHandle) {
	_ = p.p11.CloseSession(s)
	p.onDiscard(s)
}

// sweep checks the idle sessions after one turned out broken: whatever broke
// it (a device reset, a logout) has usually broken its siblings, and finding
// them now costs one cheap call each instead of one failed request each.
func (p *sessionPool) sweep() {
	for range len(p.idle) {
		var s pkcs11.SessionHandle
		select {
		case s = <-p.idle:
		default:
			return
		}
		if s != noSession {
			if _, err := p.p11.GetSessionInfo(s); err != nil {
				p.discard(s)
				s = noSession
			}
		}
		p.idle <- s
	}
}

func (p *sessionPool) open(op string) (pkcs11.SessionHandle, error) {
	s, err := p.p11.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return noSession, deviceError(op, err)
	}
	// Login is per application and token, not per session: every session
	// after the first finds the user already logged in.
	err = p.p11.Login(s, pkcs11.CKU_USER, string(p.pin.Bytes()))
	if err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = p.p11.CloseSession(s)
		return noSession, deviceError(op+": login", err)
	}
	return s, nil
}

// close waits for every lent session to come back, runs last with one open
// session (if any), then closes them all, which also logs out.
func (p *sessionPool) close(last func(pkcs11.SessionHandle)) {
	p.closeOnce.Do(func() {
		close(p.closing)
		open := make([]pkcs11.SessionHandle, 0, cap(p.idle))
		for range cap(p.idle) {
			if s := <-p.idle; s != noSession {
				open = append(open, s)
			}
		}
		if len(open) > 0 {
			last(open[0])
		}
		for _, s := range open {
			_ = p.p11.CloseSession(s)
		}
	})
}

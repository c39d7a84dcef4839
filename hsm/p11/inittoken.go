//go:build cgo

package p11

import (
	"context"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
)

// InitToken initializes a token that has never been initialized (SoftHSM
// always offers one such free slot) with label, SO PIN and user PIN. It
// never touches an initialized token and refuses a label already in use, so
// it cannot wipe keys on a real HSM.
//
// Tokens are provisioned through the loaded library rather than with
// softhsm2-util because SoftHSM does not see tokens created by another
// process after C_Initialize; this way a process can add tokens while
// Backends on other tokens stay open.
func InitToken(ctx context.Context, library, label string, soPIN, userPIN *crypto.Secret) error {
	const op = "init token"
	if err := ctx.Err(); err != nil {
		return &hsm.Error{Op: op, Err: err}
	}
	if len(label) == 0 || len(label) > maxTokenLabelLen {
		return typedError(op, hsm.ErrInvalidInput, "token label must be 1 to %d bytes", maxTokenLabelLen)
	}
	if soPIN.Len() == 0 || userPIN.Len() == 0 {
		return typedError(op, hsm.ErrInvalidInput, "SO and user PINs must not be empty")
	}
	m, err := acquireModule(op, library)
	if err != nil {
		return err
	}
	defer releaseModule(m)
	m.provisioning.Lock()
	defer m.provisioning.Unlock()

	free, err := freeTokenSlot(m.ctx, op, label)
	if err != nil {
		return err
	}
	if err := m.ctx.InitToken(free, string(soPIN.Bytes()), label); err != nil {
		return deviceError(op, err)
	}
	// Find the token again by label: a device may renumber its slot once
	// initialized.
	slot, err := findTokenSlot(m.ctx, op, label)
	if err != nil {
		return err
	}
	s, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return deviceError(op, err)
	}
	defer func() { _ = m.ctx.CloseSession(s) }()
	if err := m.ctx.Login(s, pkcs11.CKU_SO, string(soPIN.Bytes())); err != nil {
		return deviceError(op+": SO login", err)
	}
	defer func() { _ = m.ctx.Logout(s) }()
	if err := m.ctx.InitPIN(s, string(userPIN.Bytes())); err != nil {
		return deviceError(op+": set user PIN", err)
	}
	return nil
}

func freeTokenSlot(p11 *pkcs11.Ctx, op, label string) (uint, error) {
	slots, err := p11.GetSlotList(true)
	if err != nil {
		return 0, deviceError(op, err)
	}
	var free []uint
	for _, slot := range slots {
		info, err := p11.GetTokenInfo(slot)
		if err != nil {
			continue
		}
		if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			free = append(free, slot)
		} else if info.Label == label {
			return 0, typedError(op, hsm.ErrExists, "a token labelled %q", label)
		}
	}
	if len(free) == 0 {
		return 0, typedError(op, hsm.ErrUnavailable, "no uninitialized token to use")
	}
	return free[0], nil
}

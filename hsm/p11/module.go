//go:build cgo

package p11

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
)

// module is one loaded PKCS#11 library.
type module struct {
	ctx  *pkcs11.Ctx
	refs int
	// ownsInit: this registry's C_Initialize succeeded, so it must also call
	// C_Finalize. When someone else in the process initialized the library
	// first, finalizing would pull it from under them.
	ownsInit bool
	// provisioning serializes InitToken: SoftHSM offers a single free slot
	// at a time.
	provisioning sync.Mutex
}

// libraries is the package's one global, because a PKCS#11 library is
// process-global state: C_Initialize and C_Finalize act on every user of the
// library in the process, and SoftHSM reads SOFTHSM2_CONF only in
// C_Initialize. The registry counts the users of each library, initializes it
// for the first and finalizes it after the last, so Backends on several
// tokens coexist and a later Open starts afresh.
//
// A library stays loaded once loaded: unloading SoftHSM and its OpenSSL and
// loading them again is not safe in every version.
var libraries = struct {
	mu     sync.Mutex
	byPath map[string]*module
}{byPath: make(map[string]*module)}

func acquireModule(op, path string) (*module, error) {
	if path == "" {
		return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: no PKCS#11 library configured", hsm.ErrInvalidInput)}
	}
	path = filepath.Clean(path)
	libraries.mu.Lock()
	defer libraries.mu.Unlock()
	m := libraries.byPath[path]
	if m == nil {
		ctx := pkcs11.New(path)
		if ctx == nil {
			return nil, &hsm.Error{Op: op, Err: fmt.Errorf("%w: cannot load PKCS#11 library %q", hsm.ErrUnavailable, path)}
		}
		m = &module{ctx: ctx}
		libraries.byPath[path] = m
	}
	if m.refs == 0 {
		err := m.ctx.Initialize()
		var code pkcs11.Error
		switch {
		case err == nil:
			m.ownsInit = true
		case errors.As(err, &code) && code == pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED:
			m.ownsInit = false
		default:
			return nil, deviceError(op, err)
		}
	}
	m.refs++
	return m, nil
}

func releaseModule(m *module) {
	libraries.mu.Lock()
	defer libraries.mu.Unlock()
	if m.refs == 0 {
		return
	}
	m.refs--
	if m.refs == 0 && m.ownsInit {
		// Nothing useful can be done about a failed finalize; the next
		// acquire re-initializes regardless.
		_ = m.ctx.Finalize()
		m.ownsInit = false
	}
}

package hsm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Backends wrap them (directly or inside *Error) so callers
// can test with errors.Is.
var (
	// ErrNotFound: the named domain key or transport key is not in the HSM.
	ErrNotFound = errors.New("hsm: key not found")
	// ErrExists: a persistent key with that id already exists.
	ErrExists = errors.New("hsm: key already exists")
	// ErrDecrypt: a key token, wrapped domain key or sealed blob failed its
	// integrity check (altered, or made under another key).
	ErrDecrypt = errors.New("hsm: integrity check failed")
	// ErrInvalidInput: an argument has the wrong size or encoding.
	ErrInvalidInput = errors.New("hsm: invalid input")
	// ErrUnavailable: the device or a session could not be reached; a retry
	// may succeed.
	ErrUnavailable = errors.New("hsm: unavailable")
	// ErrUnsupported: this build or device cannot do the operation (for
	// example the PKCS#11 backend in a binary built without cgo).
	ErrUnsupported = errors.New("hsm: unsupported")
	// ErrSealed: the HSM refused to open: the software HSM's key store with
	// the given unseal secret, or a PKCS#11 token with the given PIN.
	ErrSealed = errors.New("hsm: key store is sealed")
)

// Error is a typed HSM failure: which operation failed, the device's code
// (a CKR_* name for PKCS#11) and whether retrying may succeed. It never
// carries key material.
type Error struct {
	Op        string
	Code      string
	Retryable bool
	Err       error
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("hsm %s: %s: %v", e.Op, e.Code, e.Err)
	}
	return fmt.Sprintf("hsm %s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is an HSM failure that a retry may cure.
func IsRetryable(err error) bool {
	var he *Error
	if errors.As(err, &he) {
		return he.Retryable
	}
	return errors.Is(err, ErrUnavailable)
}

//go:build cgo

package p11

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/pkcs11"

	"github.com/trent-kms/trent/hsm"
)

// ckrAEADDecryptFailed is PKCS#11 v3's code for a failed GCM tag; miekg/pkcs11
// v1.1.2 predates it.
const ckrAEADDecryptFailed = 0x42

type errorClass struct {
	sentinel  error
	retryable bool
}

var (
	classUnavailable = errorClass{hsm.ErrUnavailable, true}
	classDecrypt     = errorClass{hsm.ErrDecrypt, false}
	classInvalid     = errorClass{hsm.ErrInvalidInput, false}
	classUnsupported = errorClass{hsm.ErrUnsupported, false}
	classLogin       = errorClass{hsm.ErrSealed, false}
	classDeviceFault = errorClass{hsm.ErrUnavailable, false}
)

func classify(code uint) errorClass {
	switch code {
	case pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_DEVICE_REMOVED,
		pkcs11.CKR_HOST_MEMORY, pkcs11.CKR_FUNCTION_FAILED, pkcs11.CKR_FUNCTION_CANCELED,
		pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_SESSION_COUNT, pkcs11.CKR_SESSION_HANDLE_INVALID,
		pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_OPERATION_ACTIVE, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
		pkcs11.CKR_OBJECT_HANDLE_INVALID, pkcs11.CKR_KEY_HANDLE_INVALID,
		pkcs11.CKR_WRAPPING_KEY_HANDLE_INVALID, pkcs11.CKR_UNWRAPPING_KEY_HANDLE_INVALID:
		return classUnavailable
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE, ckrAEADDecryptFailed,
		pkcs11.CKR_WRAPPED_KEY_INVALID, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
		pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE:
		return classDecrypt
	case pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE,
		pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_ATTRIBUTE_VALUE_INVALID,
		pkcs11.CKR_TEMPLATE_INCOMPLETE, pkcs11.CKR_TEMPLATE_INCONSISTENT, pkcs11.CKR_KEY_SIZE_RANGE,
		pkcs11.CKR_KEY_TYPE_INCONSISTENT, pkcs11.CKR_DOMAIN_PARAMS_INVALID, pkcs11.CKR_PUBLIC_KEY_INVALID:
		return classInvalid
	case pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_FUNCTION_NOT_SUPPORTED, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED,
		pkcs11.CKR_KEY_UNEXTRACTABLE, pkcs11.CKR_KEY_NOT_WRAPPABLE, pkcs11.CKR_ATTRIBUTE_SENSITIVE,
		pkcs11.CKR_ATTRIBUTE_TYPE_INVALID, pkcs11.CKR_ATTRIBUTE_READ_ONLY, pkcs11.CKR_TOKEN_WRITE_PROTECTED:
		return classUnsupported
	case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE,
		pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
		return classLogin
	}
	return classDeviceFault
}

// sessionBrokenCodes are the failures after which a session must not go back
// to the pool: it is gone, logged out, or may still hold an operation.
var sessionBrokenCodes = map[string]bool{
	"CKR_SESSION_CLOSED":           true,
	"CKR_SESSION_HANDLE_INVALID":   true,
	"CKR_DEVICE_ERROR":             true,
	"CKR_DEVICE_REMOVED":           true,
	"CKR_TOKEN_NOT_PRESENT":        true,
	"CKR_USER_NOT_LOGGED_IN":       true,
	"CKR_OPERATION_ACTIVE":         true,
	"CKR_CRYPTOKI_NOT_INITIALIZED": true,
}

func codeName(code pkcs11.Error) string {
	// miekg/pkcs11 formats errors as "pkcs11: 0x5: CKR_GENERAL_ERROR".
	msg := code.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg[i+2:], "CKR_") {
		return msg[i+2:]
	}
	return fmt.Sprintf("CKR_0x%X", uint(code))
}

// deviceError types a failure of op. Errors that are already typed, or are
// not from the device, pass through (wrapped with op when untyped).
func deviceError(op string, err error) error { return typeError(op, err, false) }

// integrityError types a failure of a call whose only data-dependent failure
// is an integrity check (C_UnwrapKey, C_Decrypt with GCM). SoftHSM reports
// failed checks there as CKR_GENERAL_ERROR, and some devices report damaged
// input as CKR_DATA_*, so on these calls those codes mean ErrDecrypt.
func integrityError(op string, err error) error { return typeError(op, err, true) }

func typeError(op string, err error, integrity bool) error {
	if err == nil {
		return nil
	}
	var code pkcs11.Error
	if !errors.As(err, &code) {
		var typed *hsm.Error
		if errors.As(err, &typed) {
			return err
		}
		return &hsm.Error{Op: op, Err: err}
	}
	class := classify(uint(code))
	if integrity {
		switch code {
		case pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_DATA_INVALID, pkcs11.CKR_DATA_LEN_RANGE:
			class = classDecrypt
		}
	}
	return &hsm.Error{Op: op, Code: codeName(code), Retryable: class.retryable, Err: class.sentinel}
}

func sessionBroken(err error) bool {
	var typed *hsm.Error
	return errors.As(err, &typed) && sessionBrokenCodes[typed.Code]
}

var staleHandleCodes = map[string]bool{
	"CKR_OBJECT_HANDLE_INVALID":         true,
	"CKR_KEY_HANDLE_INVALID":            true,
	"CKR_WRAPPING_KEY_HANDLE_INVALID":   true,
	"CKR_UNWRAPPING_KEY_HANDLE_INVALID": true,
}

func staleHandle(err error) bool {
	var typed *hsm.Error
	return errors.As(err, &typed) && staleHandleCodes[typed.Code]
}

func isCode(err error, want uint) bool {
	var code pkcs11.Error
	return errors.As(err, &code) && uint(code) == want
}

func typedError(op string, sentinel error, format string, args ...any) error {
	return &hsm.Error{Op: op, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

func closedError(op string) error {
	return typedError(op, hsm.ErrUnavailable, "backend closed")
}

package crypto

import (
	"errors"
	"fmt"
)

// Names as AWS KMS spells them, so AWS SDKs and tools work unchanged.
const (
	KeySpecSymmetricDefault             = "SYMMETRIC_DEFAULT"
	KeyUsageEncryptDecrypt              = "ENCRYPT_DECRYPT"
	EncryptionAlgorithmSymmetricDefault = "SYMMETRIC_DEFAULT"
	DataKeySpecAES128                   = "AES_128"
	DataKeySpecAES256                   = "AES_256"

	// Protection levels are Trent's own: HSM runs every operation inside the
	// HSM, SOFTWARE runs it in process with a key the HSM unwrapped.
	ProtectionLevelSoftware = "SOFTWARE"
	ProtectionLevelHSM      = "HSM"
)

// Request size limits, in bytes, the same as AWS KMS.
const (
	MinPlaintext    = 1
	MaxPlaintext    = 4096
	MinDataKeyBytes = 1
	MaxDataKeyBytes = 1024
	MinRandomBytes  = 1
	MaxRandomBytes  = 1024
)

var (
	// ErrInvalidKeySpec: a key or data key spec this build does not know.
	ErrInvalidKeySpec = errors.New("crypto: invalid key spec")
	// ErrInvalidLength: a request field's length is outside its limits.
	ErrInvalidLength = errors.New("crypto: invalid length")
)

// DataKeySize returns the length in bytes of a data key of spec.
func DataKeySize(spec string) (int, error) {
	switch spec {
	case DataKeySpecAES128:
		return 16, nil
	case DataKeySpecAES256:
		return 32, nil
	}
	return 0, fmt.Errorf("%w: KeySpec: %.64q is not a data key spec; use %s or %s",
		ErrInvalidKeySpec, spec, DataKeySpecAES128, DataKeySpecAES256)
}

// ValidPlaintextSize checks the Plaintext field of Encrypt.
func ValidPlaintextSize(n int) error {
	return checkLength("Plaintext", n, MinPlaintext, MaxPlaintext)
}

// ValidDataKeyBytes checks the NumberOfBytes field of GenerateDataKey.
func ValidDataKeyBytes(n int) error {
	return checkLength("NumberOfBytes", n, MinDataKeyBytes, MaxDataKeyBytes)
}

// ValidRandomBytes checks the NumberOfBytes field of GenerateRandom.
func ValidRandomBytes(n int) error {
	return checkLength("NumberOfBytes", n, MinRandomBytes, MaxRandomBytes)
}

func checkLength(field string, n, lo, hi int) error {
	switch {
	case n < lo:
		return fmt.Errorf("%w: %s: length %d is below the minimum %d bytes", ErrInvalidLength, field, n, lo)
	case n > hi:
		return fmt.Errorf("%w: %s: length %d exceeds the maximum %d bytes", ErrInvalidLength, field, n, hi)
	}
	return nil
}

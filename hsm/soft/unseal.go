package soft

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
)

const (
	// UnsealSecretSize is the size of a generated unseal secret.
	UnsealSecretSize = 32
	// MinUnsealSecretSize is the shortest unseal secret Open accepts.
	MinUnsealSecretSize = 16
)

// GenerateUnsealSecret returns a new random unseal secret.
func GenerateUnsealSecret() (*crypto.Secret, error) {
	b := make([]byte, UnsealSecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("%w: %w", hsm.ErrUnavailable, err)
	}
	return crypto.NewSecret(b), nil
}

// WriteUnsealSecretFile stores secret in a new 0600 file as hex and a
// newline. It never replaces an existing file (hsm.ErrExists): overwriting
// the secret would seal the key store for good.
func WriteUnsealSecretFile(path string, secret *crypto.Secret) error {
	if secret.Len() < MinUnsealSecretSize {
		return fmt.Errorf("%w: unseal secret shorter than %d bytes", hsm.ErrInvalidInput, MinUnsealSecretSize)
	}
	encoded := make([]byte, hex.EncodedLen(secret.Len())+1)
	defer clear(encoded)
	hex.Encode(encoded, secret.Bytes())
	encoded[len(encoded)-1] = '\n'
	err := writeFileExclusive(path, encoded)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: unseal secret file %s", hsm.ErrExists, path)
	}
	return err
}

// ReadUnsealSecretFile reads a file written by WriteUnsealSecretFile.
func ReadUnsealSecretFile(path string) (*crypto.Secret, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	encoded := bytes.TrimSpace(raw)
	secret := make([]byte, hex.DecodedLen(len(encoded)))
	if _, err := hex.Decode(secret, encoded); err != nil || len(secret) < MinUnsealSecretSize {
		clear(secret)
		return nil, fmt.Errorf("%w: %s does not hold a hex unseal secret of at least %d bytes", hsm.ErrInvalidInput, path, MinUnsealSecretSize)
	}
	return crypto.NewSecret(secret), nil
}

// LoadOrCreateUnsealSecretFile reads the secret at path, or generates and
// writes one if the file does not exist (development mode).
func LoadOrCreateUnsealSecretFile(path string) (secret *crypto.Secret, created bool, err error) {
	secret, err = ReadUnsealSecretFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, false, err
	}
	if secret, err = GenerateUnsealSecret(); err != nil {
		return nil, false, err
	}
	if err := WriteUnsealSecretFile(path, secret); err != nil {
		secret.Zero()
		if errors.Is(err, hsm.ErrExists) {
			// Another process created it between our read and write.
			secret, err = ReadUnsealSecretFile(path)
			return secret, false, err
		}
		return nil, false, err
	}
	return secret, true, nil
}

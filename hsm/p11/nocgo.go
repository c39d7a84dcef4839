//go:build !cgo

package p11

import (
	"context"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
)

// Backend is unusable in a build without cgo; it exists so code that names
// *p11.Backend compiles either way.
type Backend struct{}

var _ hsm.Backend = (*Backend)(nil)

func unsupported(op string) error {
	return &hsm.Error{Op: op, Code: "built without cgo", Err: hsm.ErrUnsupported}
}

// Open reports hsm.ErrUnsupported: PKCS#11 needs cgo.
func Open(context.Context, Config) (*Backend, error) { return nil, unsupported("open") }

// InitToken reports hsm.ErrUnsupported: PKCS#11 needs cgo.
func InitToken(context.Context, string, string, *crypto.Secret, *crypto.Secret) error {
	return unsupported("init token")
}

func (*Backend) Kind() string { return "pkcs11" }
func (*Backend) CreateDomainKey(context.Context, string) error {
	return unsupported("create domain key")
}
func (*Backend) HasDomainKey(context.Context, string) (bool, error) {
	return false, unsupported("has domain key")
}
func (*Backend) TransportPublicKey(context.Context) ([]byte, error) {
	return nil, unsupported("transport public key")
}
func (*Backend) ImportDomainKey(context.Context, string, []byte) error {
	return unsupported("import domain key")
}
func (*Backend) GenerateKeyToken(context.Context, string) ([]byte, error) {
	return nil, unsupported("generate key token")
}
func (*Backend) GenerateRandom(context.Context, int) ([]byte, error) {
	return nil, unsupported("generate random")
}
func (*Backend) Close() error { return nil }

func (*Backend) ExportDomainKey(context.Context, string, []byte) ([]byte, error) {
	return nil, unsupported("export domain key")
}

func (*Backend) UnwrapKeyToken(context.Context, string, []byte) (*crypto.Secret, error) {
	return nil, unsupported("unwrap key token")
}

func (*Backend) Seal(context.Context, string, []byte, []byte, []byte, []byte, []byte) ([]byte, error) {
	return nil, unsupported("seal")
}

func (*Backend) Open(context.Context, string, []byte, []byte, []byte, []byte, []byte) (*crypto.Secret, error) {
	return nil, unsupported("open sealed")
}

func (*Backend) GenerateSigningKeyToken(context.Context, string) ([]byte, []byte, error) {
	return nil, nil, unsupported("generate signing key token")
}

func (*Backend) SignWithKeyToken(context.Context, string, []byte, []byte) ([]byte, error) {
	return nil, unsupported("sign with key token")
}

func (*Backend) ExportKeyTokens(context.Context, []byte, []hsm.KeyTokenRef) ([]byte, [][]byte, error) {
	return nil, nil, unsupported("export key tokens")
}

func (*Backend) ImportKeyTokens(context.Context, string, []byte, [][]byte) ([][]byte, error) {
	return nil, unsupported("import key tokens")
}

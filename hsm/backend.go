// Package hsm owns the boundary to the hardware security module: the Backend
// interface every node uses for key generation, wrapping and in-HSM
// cryptography, with two implementations — PKCS#11 (hsm/p11, the only cgo
// and miekg/pkcs11 user) and a pure-Go software HSM with a sealed key store
// (hsm/soft) — plus one conformance suite both pass (hsm/hsmtest).
//
// Key hierarchy (DESIGN.md): the region's domain keys (DK) live only inside
// HSMs. Backing keys are generated inside the HSM and leave it only as key
// tokens, wrapped under a DK with AES key wrap with padding (RFC 5649).
package hsm

import (
	"context"

	"github.com/trent-kms/trent/crypto"
)

// Sizes fixed by the key hierarchy.
const (
	// DomainKeySize is the size of a domain key (AES-256).
	DomainKeySize = 32
	// BackingKeySize is the size of a symmetric backing key (AES-256).
	BackingKeySize = 32
	// SaltSize is the per-call salt from which Seal/Open derive the call key.
	SaltSize = 32
	// NonceSize is the AES-GCM nonce size.
	NonceSize = 12
	// TagSize is the AES-GCM tag size appended to sealed data.
	TagSize = 16
)

// Backend is one node's HSM. Implementations are safe for concurrent use and
// honour context cancellation where the underlying device allows.
//
// Errors wrap the sentinels in errors.go; an *Error adds the failing
// operation, the device's code and whether a retry may succeed.
type Backend interface {
	// Kind names the implementation ("pkcs11" or "software") for status output.
	Kind() string

	// CreateDomainKey generates a new AES-256 domain key inside the HSM and
	// stores it persistently under id. ErrExists if id is taken.
	CreateDomainKey(ctx context.Context, id string) error
	// HasDomainKey reports whether domain key id is held by this HSM.
	HasDomainKey(ctx context.Context, id string) (bool, error)

	// TransportPublicKey returns this HSM's transport public key (PKIX DER),
	// generating the persistent key pair on first use. Members wrap domain
	// keys to it when this node joins a region.
	TransportPublicKey(ctx context.Context) ([]byte, error)
	// ExportDomainKey wraps domain key id, inside the HSM, to a peer's
	// transport public key (PKIX DER, as returned by the peer's
	// TransportPublicKey).
	ExportDomainKey(ctx context.Context, id string, peerPublicKey []byte) ([]byte, error)
	// ImportDomainKey unwraps, inside the HSM, a domain key that a peer's
	// ExportDomainKey wrapped to this HSM's transport key, and stores it
	// persistently under id. Importing an id that already exists is a no-op.
	ImportDomainKey(ctx context.Context, id string, wrapped []byte) error

	// GenerateKeyToken generates a new AES-256 backing key inside the HSM and
	// returns it wrapped under domain key dkID (RFC 5649, 40 bytes). The
	// plaintext key never leaves the HSM.
	GenerateKeyToken(ctx context.Context, dkID string) ([]byte, error)
	// UnwrapKeyToken unwraps a key token into memory, for keys of protection
	// level SOFTWARE. ErrDecrypt if the token was not made under dkID or was
	// altered.
	UnwrapKeyToken(ctx context.Context, dkID string, token []byte) (*crypto.Secret, error)

	// Seal encrypts plaintext inside the HSM with the backing key in token
	// (protection level HSM). The call key is derived inside the HSM as
	// AES-256-ECB(backing key, salt) over the 32-byte salt (the PKCS#11
	// mechanism CKM_AES_ECB_ENCRYPT_DATA); the result is AES-256-GCM with
	// the given 12-byte nonce and aad, ciphertext followed by the 16-byte tag.
	Seal(ctx context.Context, dkID string, token, salt, nonce, plaintext, aad []byte) ([]byte, error)
	// Open reverses Seal. ErrDecrypt if the tag does not verify.
	Open(ctx context.Context, dkID string, token, salt, nonce, sealed, aad []byte) (*crypto.Secret, error)

	// GenerateRandom returns n bytes from the HSM's random number generator.
	GenerateRandom(ctx context.Context, n int) ([]byte, error)

	// Close releases sessions and handles. The Backend is unusable after.
	Close() error
}

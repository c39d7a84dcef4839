// Package hsm owns the boundary to the hardware security module: the Backend
// interface every node uses for key generation, wrapping and in-HSM
// cryptography, with two implementations — PKCS#11 (hsm/p11, the only cgo
// and miekg/pkcs11 user) and a pure-Go software HSM with a sealed key store
// (hsm/soft) — plus one conformance suite both pass (hsm/hsmtest).
//
// Key hierarchy (DESIGN.md): the region's domain keys (DK) live only inside
// HSMs. Backing keys are generated inside the HSM and leave it only as key
// tokens, wrapped under a DK with AES key wrap with padding (RFC 5649).
//
// What crosses regions: never a DK. Multi-region keys' backing keys leave
// the source HSM only in batches (ExportKeyTokens): each is wrapped under a
// fresh session key, which is wrapped to one destination node's transport
// key, and that node's HSM re-wraps them under the destination region's DK
// (ImportKeyTokens). The batch is signed with the source region's signing
// key, an ECDSA P-256 key kept as a token under the region's DK
// (GenerateSigningKeyToken, SignWithKeyToken), and the receiver checks the
// signature before it imports; hsm/DESIGN.md says why that check must never
// be skipped.
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
	// DigestSize is the size of the SHA-256 digest SignWithKeyToken signs.
	DigestSize = 32
)

// MaxKeyTokenBatch bounds the keys of one ExportKeyTokens or ImportKeyTokens
// call.
const MaxKeyTokenBatch = 10000

// KeyTokenRef names one key token and the domain key it is wrapped under.
type KeyTokenRef struct {
	DomainKeyID string
	Token       []byte
}

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

	// ExportKeyTokens is how multi-region keys' material reaches another
	// region, any number of keys at the cost of one RSA operation at the
	// receiver. It generates a fresh AES-256 session key inside the HSM,
	// wraps it to peerPublicKey (PKIX DER RSA, as returned by the peer's
	// TransportPublicKey) with the RSA-OAEP of ExportDomainKey (sessionKey,
	// 384 bytes), and wraps each backing key (unwrapped from its token inside
	// the HSM) under the session key with AES key wrap with padding (RFC
	// 5649, CKM_AES_KEY_WRAP_PAD; 40 bytes each, in the order of tokens).
	// Plaintext keys never leave the HSM; the session key is destroyed after.
	// ErrNotFound for an unknown domain key, ErrDecrypt for an altered token
	// (or one not made under its domain key), ErrInvalidInput for an empty
	// list, more than MaxKeyTokenBatch, a token that does not hold a 32-byte
	// key or an unusable peerPublicKey.
	ExportKeyTokens(ctx context.Context, peerPublicKey []byte, tokens []KeyTokenRef) (sessionKey []byte, wrapped [][]byte, err error)
	// ImportKeyTokens unwraps sessionKey with this HSM's transport key, then
	// each wrapped key under it, and returns each as a key token under domain
	// key dkID, usable like one from GenerateKeyToken, in the order of
	// wrapped. All or nothing: on error no tokens are returned. ErrDecrypt if
	// the session key was made for another HSM or anything was altered;
	// ErrNotFound for an unknown dkID or before this HSM has a transport key;
	// ErrInvalidInput for an empty list or more than MaxKeyTokenBatch.
	// Callers must authenticate the inputs first (the source region's
	// signature): a session key and a wrapped domain key are both a 32-byte
	// AES key under RSA-OAEP to the transport key, which the HSM cannot tell
	// apart, and a domain key passed as sessionKey would import that domain
	// key's tokens. There is deliberately no call that imports a single
	// RSA-wrapped key as a backing key: it would accept a batch's session
	// key, and UnwrapKeyToken would then reveal it and every key of the
	// batch (hsm/DESIGN.md).
	ImportKeyTokens(ctx context.Context, dkID string, sessionKey []byte, wrapped [][]byte) ([][]byte, error)

	// GenerateSigningKeyToken generates an ECDSA P-256 key pair inside the
	// HSM and returns the private key as a signing key token, its PKCS#8
	// encoding wrapped under domain key dkID (RFC 5649), and the public key
	// as PKIX DER. A region's signing key is such a token: any node of the
	// region holding dkID can sign with it.
	GenerateSigningKeyToken(ctx context.Context, dkID string) (token, publicKey []byte, err error)
	// SignWithKeyToken unwraps a signing key token inside the HSM and signs
	// a 32-byte SHA-256 digest with ECDSA. The signature is ASN.1 DER, as
	// crypto/ecdsa.VerifyASN1 takes it. ErrDecrypt if the token was not made
	// under dkID or was altered; ErrInvalidInput for a digest that is not 32
	// bytes or a token of the wrong size (a symmetric key token, say).
	SignWithKeyToken(ctx context.Context, dkID string, token, digest []byte) ([]byte, error)

	// GenerateRandom returns n bytes from the HSM's random number generator.
	GenerateRandom(ctx context.Context, n int) ([]byte, error)

	// Close releases sessions and handles. The Backend is unusable after.
	Close() error
}

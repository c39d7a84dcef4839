// Package crypto owns Trent's data formats and in-process cryptography: the
// versioned ciphertext format, AES-256-GCM with per-call key derivation,
// the canonical encoding of encryption contexts, key specs and algorithms,
// and Secret, the type that holds key material and plaintext and redacts
// itself everywhere it could be printed.
//
// The byte layout, what the AEAD authenticates and the golden-vector policy
// are in DESIGN.md beside this file.
//
// It imports nothing from the rest of the module.
package crypto

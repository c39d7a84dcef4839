package crypto

import "log/slog"

const redacted = "[REDACTED]"

// Secret holds key material or plaintext. It never prints its contents: fmt,
// slog and encoding/json all see "[REDACTED]". Zero overwrites the bytes so a
// cache can scrub evicted keys.
type Secret struct {
	b []byte
}

// NewSecret wraps b. The Secret takes ownership: the caller must not keep or
// reuse b.
func NewSecret(b []byte) *Secret { return &Secret{b: b} }

// Bytes returns the secret bytes. Callers must not retain them past the
// Secret's lifetime or log them.
func (s *Secret) Bytes() []byte {
	if s == nil {
		return nil
	}
	return s.b
}

// Len returns the length of the secret in bytes.
func (s *Secret) Len() int {
	if s == nil {
		return 0
	}
	return len(s.b)
}

// Zero overwrites the secret bytes with zeros.
func (s *Secret) Zero() {
	if s == nil {
		return
	}
	clear(s.b)
}

// String implements fmt.Stringer without revealing the secret.
func (s *Secret) String() string { return redacted }

// GoString implements fmt.GoStringer without revealing the secret.
func (s *Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer without revealing the secret.
func (s *Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler without revealing the secret,
// so JSON and text encoders print the redaction marker.
func (s *Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

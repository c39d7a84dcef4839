package p11

import "log/slog"

// Defaults applied to zero Config fields.
const (
	DefaultPoolSize     = 4
	DefaultKeyCacheSize = 1024
)

// Config selects the PKCS#11 module and token.
type Config struct {
	// Library is the path of the PKCS#11 module (for SoftHSM2,
	// /usr/lib/softhsm/libsofthsm2.so).
	Library string
	// TokenLabel names the token; at most 32 bytes, as PKCS#11 pads labels
	// to 32.
	TokenLabel string
	// PINFile holds the user PIN; a trailing newline is ignored.
	PINFile string
	// PoolSize bounds the logged-in sessions (default 4).
	PoolSize int
	// KeyCacheSize bounds the backing keys kept unwrapped in the HSM as
	// session objects for Seal/Open (default 1024).
	KeyCacheSize int
	// Logger receives operational events; nil discards them.
	Logger *slog.Logger
}

package hsmtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/p11"
)

// RequireSoftHSMEnv, when set (CI sets it), turns a missing SoftHSM2 into a
// test failure instead of a skip.
const RequireSoftHSMEnv = "TRENT_REQUIRE_SOFTHSM"

// SoftHSMLibraryEnv overrides where the SoftHSM2 PKCS#11 library is looked for.
const SoftHSMLibraryEnv = "TRENT_SOFTHSM_LIBRARY"

var softHSMLibraryCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// softHSM is the SoftHSM2 configuration shared by every token that exists
// in this test process at one time. SoftHSM reads SOFTHSM2_CONF only in
// C_Initialize and does not see tokens another process creates afterwards,
// so tokens cannot each have their own configuration while Backends on other
// tokens are open. Instead one token directory serves all of them, tokens are
// created in-process (p11.InitToken), and the directory is removed when the
// last token's test ends; by then its Backends are closed, the library is
// finalized, and the next test starts from a fresh configuration.
var softHSM struct {
	mu          sync.Mutex
	users       int
	dir         string
	previous    string
	hadPrevious bool
	labels      int
}

// NewSoftHSMToken creates a SoftHSM2 token for this test and returns a
// Config for it; the token is gone after the test. Any number of tokens may
// exist at once, also from parallel tests. Close every Backend opened on it
// before the test ends (OpenSoftHSM does that for you).
//
// Without SoftHSM2 (or without cgo) the test is skipped, or fails when
// TRENT_REQUIRE_SOFTHSM is set.
func NewSoftHSMToken(tb testing.TB) p11.Config {
	tb.Helper()
	library := softHSMLibrary()
	if library == "" {
		skipOrFail(tb, fmt.Sprintf("SoftHSM2 library not found (set %s, or install softhsm2 into one of %v)", SoftHSMLibraryEnv, softHSMLibraryCandidates))
	}
	label, err := joinSoftHSM()
	if err != nil {
		tb.Fatalf("hsmtest: %v", err)
	}
	tb.Cleanup(leaveSoftHSM)

	soPIN, userPIN := randomPIN(tb), randomPIN(tb)
	err = p11.InitToken(context.Background(), library, label, crypto.NewSecret(soPIN), crypto.NewSecret(bytesClone(userPIN)))
	if errors.Is(err, hsm.ErrUnsupported) {
		skipOrFail(tb, "PKCS#11 unavailable: "+err.Error())
	}
	if err != nil {
		tb.Fatalf("hsmtest: create SoftHSM token: %v", err)
	}
	pinFile := filepath.Join(tb.TempDir(), "user.pin")
	if err := os.WriteFile(pinFile, append(userPIN, '\n'), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p11.Config{Library: library, TokenLabel: label, PINFile: pinFile}
}

// OpenSoftHSM opens a PKCS#11 backend on a new SoftHSM2 token, closed when
// the test ends.
func OpenSoftHSM(tb testing.TB) *p11.Backend {
	tb.Helper()
	cfg := NewSoftHSMToken(tb)
	b, err := p11.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("hsmtest: open SoftHSM token: %v", err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}

func softHSMLibrary() string {
	candidates := softHSMLibraryCandidates
	if lib := os.Getenv(SoftHSMLibraryEnv); lib != "" {
		candidates = []string{lib}
	}
	for _, lib := range candidates {
		if _, err := os.Stat(lib); err == nil {
			return lib
		}
	}
	return ""
}

func skipOrFail(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv(RequireSoftHSMEnv) != "" {
		tb.Fatalf("hsmtest: %s, and %s is set", why, RequireSoftHSMEnv)
	}
	tb.Skipf("hsmtest: %s", why)
}

// joinSoftHSM sets up the shared configuration if this is its first user
// and returns a label unique in this process.
func joinSoftHSM() (string, error) {
	softHSM.mu.Lock()
	defer softHSM.mu.Unlock()
	if softHSM.users == 0 {
		dir, err := os.MkdirTemp("", "trent-softhsm-")
		if err != nil {
			return "", err
		}
		tokens := filepath.Join(dir, "tokens")
		conf := filepath.Join(dir, "softhsm2.conf")
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
		if err := os.Mkdir(tokens, 0o700); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		softHSM.previous, softHSM.hadPrevious = os.LookupEnv("SOFTHSM2_CONF")
		os.Setenv("SOFTHSM2_CONF", conf)
		softHSM.dir = dir
	}
	softHSM.users++
	softHSM.labels++
	return fmt.Sprintf("trent-test-%d", softHSM.labels), nil
}

func leaveSoftHSM() {
	softHSM.mu.Lock()
	defer softHSM.mu.Unlock()
	softHSM.users--
	if softHSM.users > 0 {
		return
	}
	os.RemoveAll(softHSM.dir)
	if softHSM.hadPrevious {
		os.Setenv("SOFTHSM2_CONF", softHSM.previous)
	} else {
		os.Unsetenv("SOFTHSM2_CONF")
	}
}

func randomPIN(tb testing.TB) []byte {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return []byte(hex.EncodeToString(b))
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

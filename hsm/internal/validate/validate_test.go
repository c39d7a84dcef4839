package validate

import (
	"errors"
	"strings"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

func TestDomainKeyID(t *testing.T) {
	for _, ok := range []string{"a", "dk-2024.01_x", strings.Repeat("z", MaxDomainKeyIDLen)} {
		if err := DomainKeyID(ok); err != nil {
			t.Errorf("DomainKeyID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "has space", "slash/", "nul\x00", "é", strings.Repeat("z", MaxDomainKeyIDLen+1)} {
		if err := DomainKeyID(bad); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("DomainKeyID(%q) = %v, want ErrInvalidInput", bad, err)
		}
	}
}

func TestSizes(t *testing.T) {
	if err := KeyToken(make([]byte, 39)); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("KeyToken(39 bytes) = %v", err)
	}
	if err := SaltAndNonce(make([]byte, 32), make([]byte, 16)); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("16-byte nonce accepted: %v", err)
	}
	if err := Sealed(make([]byte, 15)); !errors.Is(err, hsm.ErrDecrypt) {
		t.Errorf("Sealed(15 bytes) = %v", err)
	}
	if err := RandomLength(-1); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("RandomLength(-1) = %v", err)
	}
	for _, n := range []int{0, KeyTokenSize, MinSigningKeyTokenSize - 8, MinSigningKeyTokenSize + 1, MaxSigningKeyTokenSize + 8} {
		if err := SigningKeyToken(make([]byte, n)); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("SigningKeyToken(%d bytes) = %v", n, err)
		}
	}
	for _, n := range []int{MinSigningKeyTokenSize, 152, MaxSigningKeyTokenSize} {
		if err := SigningKeyToken(make([]byte, n)); err != nil {
			t.Errorf("SigningKeyToken(%d bytes) = %v", n, err)
		}
	}
	for _, n := range []int{0, 20, 31, 33, 64} {
		if err := Digest(make([]byte, n)); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("Digest(%d bytes) = %v", n, err)
		}
	}
	if err := WrappedSessionKey(make([]byte, TransportKeyBits/8-1)); !errors.Is(err, hsm.ErrInvalidInput) {
		t.Errorf("WrappedSessionKey(short) = %v", err)
	}
}

func TestPeerTransportKeyRejectsGarbageAndSmallKeys(t *testing.T) {
	for _, der := range [][]byte{nil, {0x30, 0x00}, []byte("not a key")} {
		if _, err := PeerTransportKey(der); !errors.Is(err, hsm.ErrInvalidInput) {
			t.Errorf("PeerTransportKey(%x) = %v", der, err)
		}
	}
}

package soft

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func block(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 5649 §6.
func TestKeyWrapPaddedRFC5649Vectors(t *testing.T) {
	kek := block(t, unhex(t, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8"))
	for _, v := range []struct{ name, key, wrapped string }{
		{"20 octets", "c37b7e6492584340 bed1220780894115 5068f738",
			"138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"7 octets", "466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	} {
		t.Run(v.name, func(t *testing.T) {
			key, want := unhex(t, v.key), unhex(t, v.wrapped)
			got, err := wrapKeyPadded(kek, key)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("wrap = %x, %v; want %x", got, err, want)
			}
			back, err := unwrapKeyPadded(kek, want)
			if err != nil || !bytes.Equal(back, key) {
				t.Fatalf("unwrap = %x, %v; want %x", back, err, key)
			}
		})
	}
}

// RFC 3394 §4.1 and §4.6 exercise the block process with the RFC 3394 IV.
func TestWrapBlocksRFC3394Vectors(t *testing.T) {
	iv := [8]byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}
	for _, v := range []struct{ name, kek, key, wrapped string }{
		{"128-bit KEK, 128-bit key", "000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
			"1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"256-bit KEK, 256-bit key", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	} {
		t.Run(v.name, func(t *testing.T) {
			kek, key, want := block(t, unhex(t, v.kek)), unhex(t, v.key), unhex(t, v.wrapped)
			if got := wrapBlocks(kek, iv, key); !bytes.Equal(got, want) {
				t.Fatalf("wrap = %x, want %x", got, want)
			}
			gotIV, got := unwrapBlocks(kek, want)
			if gotIV != iv || !bytes.Equal(got, key) {
				t.Fatalf("unwrap = %x %x", gotIV, got)
			}
		})
	}
}

func TestKeyWrapPaddedRoundTripsEveryLength(t *testing.T) {
	kek := block(t, bytes.Repeat([]byte{7}, 32))
	for n := 1; n <= 80; n++ {
		key := bytes.Repeat([]byte{byte(n)}, n)
		wrapped, err := wrapKeyPadded(kek, key)
		if err != nil {
			t.Fatal(err)
		}
		if want := 8 + (n+7)/8*8; len(wrapped) != want {
			t.Fatalf("len(wrap(%d bytes)) = %d, want %d", n, len(wrapped), want)
		}
		back, err := unwrapKeyPadded(kek, wrapped)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("%d bytes: unwrap = %x, %v", n, back, err)
		}
	}
	if _, err := wrapKeyPadded(kek, nil); err == nil {
		t.Fatal("wrapped an empty key")
	}
}

func TestUnwrapKeyPaddedRejectsDamage(t *testing.T) {
	kek := block(t, bytes.Repeat([]byte{7}, 32))
	other := block(t, bytes.Repeat([]byte{8}, 32))
	for _, n := range []int{5, 32} {
		wrapped, _ := wrapKeyPadded(kek, bytes.Repeat([]byte{1}, n))
		for i := range len(wrapped) * 8 {
			bad := bytes.Clone(wrapped)
			bad[i/8] ^= 1 << (i % 8)
			if _, err := unwrapKeyPadded(kek, bad); err != errKeyWrapIntegrity {
				t.Fatalf("%d-byte key, bit %d flipped: err = %v", n, i, err)
			}
		}
		if _, err := unwrapKeyPadded(other, wrapped); err != errKeyWrapIntegrity {
			t.Fatalf("unwrapped under another KEK: %v", err)
		}
	}
	for _, size := range []int{0, 8, 15, 17, 23} {
		if _, err := unwrapKeyPadded(kek, make([]byte, size)); err != errKeyWrapIntegrity {
			t.Fatalf("%d-byte input: err = %v", size, err)
		}
	}
}

// A correct ICV with a length or padding that RFC 5649 forbids must fail.
func TestUnwrapKeyPaddedChecksLengthAndPadding(t *testing.T) {
	kek := block(t, bytes.Repeat([]byte{9}, 16))
	forge := func(mli uint32, padded []byte) []byte {
		var aiv [8]byte
		copy(aiv[:4], kwpICV[:])
		binary.BigEndian.PutUint32(aiv[4:], mli)
		if len(padded) == 8 {
			out := append(aiv[:], padded...)
			kek.Encrypt(out, out)
			return out
		}
		return wrapBlocks(kek, aiv, padded)
	}
	for _, c := range []struct {
		name   string
		mli    uint32
		padded []byte
	}{
		{"zero length", 0, make([]byte, 8)},
		{"length beyond data", 9, make([]byte, 8)},
		{"length a whole block short", 8, make([]byte, 16)},
		{"non-zero padding", 3, []byte{1, 2, 3, 0, 0, 1, 0, 0}},
		{"non-zero padding, two blocks", 12, append(make([]byte, 12), 0, 0, 0, 1)},
	} {
		if _, err := unwrapKeyPadded(kek, forge(c.mli, c.padded)); err != errKeyWrapIntegrity {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
}

func FuzzUnwrapKeyPadded(f *testing.F) {
	kek := block(f, bytes.Repeat([]byte{7}, 32))
	good, _ := wrapKeyPadded(kek, bytes.Repeat([]byte{1}, 32))
	f.Add(good)
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, wrapped []byte) {
		key, err := unwrapKeyPadded(kek, wrapped)
		if err != nil {
			return
		}
		again, err := wrapKeyPadded(kek, key)
		if err != nil || !bytes.Equal(again, wrapped) {
			t.Fatalf("unwrap accepted %x but rewrap gives %x", wrapped, again)
		}
	})
}

package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const testKeyID = "1234abcd-12ab-34cd-56ef-1234567890ab"

func testHeader() Header {
	h := Header{KeyID: testKeyID}
	for i := range h.VersionID {
		h.VersionID[i] = 0xa0 + byte(i)
	}
	for i := range h.Salt {
		h.Salt[i] = 0x50 + byte(i)
	}
	for i := range h.Nonce {
		h.Nonce[i] = 0x10 + byte(i)
	}
	return h
}

func TestHeaderLayout(t *testing.T) {
	h := testHeader()
	got, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{FormatVersion, byte(len(testKeyID))}
	want = append(want, testKeyID...)
	want = append(want, h.VersionID[:]...)
	want = append(want, h.Salt[:]...)
	want = append(want, h.Nonce[:]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("MarshalBinary = %x\nwant %x", got, want)
	}
	appended, err := h.AppendBinary([]byte("prefix"))
	if err != nil || !bytes.Equal(appended, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendBinary = %x, %v", appended, err)
	}
}

func TestCiphertextRoundTrip(t *testing.T) {
	for _, id := range []string{"a", testKeyID, "mrk-0123456789abcdef0123456789abcdef", strings.Repeat("Z", MaxKeyIDLen)} {
		c := &Ciphertext{Header: testHeader(), Sealed: bytes.Repeat([]byte{0xee}, TagSize+3)}
		c.KeyID = id
		blob := c.Marshal()
		got, err := ParseCiphertext(blob)
		if err != nil {
			t.Fatalf("key id %q: %v", id, err)
		}
		if got.Header != c.Header || !bytes.Equal(got.Sealed, c.Sealed) {
			t.Fatalf("key id %q: parsed %+v, want %+v", id, got, c)
		}
		if !bytes.Equal(got.Marshal(), blob) {
			t.Fatalf("key id %q: re-marshalled blob differs", id)
		}
	}
}

func TestHeaderRejectsKeyIDsParseWouldReject(t *testing.T) {
	for _, id := range []string{"", strings.Repeat("a", MaxKeyIDLen+1), "alias/my-key", "key id", "ключ", "a\x00"} {
		h := testHeader()
		h.KeyID = id
		if _, err := h.MarshalBinary(); !errors.Is(err, ErrInvalidKeyID) {
			t.Errorf("key id %q: got %v, want ErrInvalidKeyID", id, err)
		}
		if b := (&Ciphertext{Header: h, Sealed: make([]byte, TagSize)}).Marshal(); b != nil {
			t.Errorf("key id %q: Marshal returned %x, want nil", id, b)
		}
	}
}

func TestParseCiphertextRejects(t *testing.T) {
	valid := (&Ciphertext{Header: testHeader(), Sealed: make([]byte, TagSize)}).Marshal()
	hdrLen := len(valid) - TagSize
	with := func(i int, v byte) []byte {
		b := bytes.Clone(valid)
		b[i] = v
		return b
	}
	tests := []struct {
		name    string
		blob    []byte
		want    error
		message string
	}{
		{"nil", nil, ErrMalformedCiphertext, "ciphertext is empty"},
		{"empty", []byte{}, ErrMalformedCiphertext, "ciphertext is empty"},
		{"version 0", with(0, 0), ErrUnsupportedVersion, "0x00 (this build reads 0x01)"},
		{"version 2", with(0, 2), ErrUnsupportedVersion, "0x02"},
		{"version byte only", []byte{FormatVersion}, ErrMalformedCiphertext, "header needs at least 63 bytes, have 1"},
		{"key id length 0", with(1, 0), ErrMalformedCiphertext, "key id length is 0"},
		{"key id past end", []byte{FormatVersion, 5, 'a', 'b'}, ErrMalformedCiphertext, "key id length 5 runs past the end of the 4-byte ciphertext"},
		{"key id bad character", with(5, '/'), ErrMalformedCiphertext, "outside [A-Za-z0-9-] at offset 3"},
		{"header truncated", valid[:hdrLen-1], ErrMalformedCiphertext,
			"ciphertext truncated: header needs 98 bytes, have 97"},
		{"no sealed bytes", valid[:hdrLen], ErrMalformedCiphertext, "sealed part is 0 bytes, shorter than the 16-byte tag"},
		{"sealed shorter than tag", valid[:len(valid)-1], ErrMalformedCiphertext, "sealed part is 15 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCiphertext(tt.blob)
			if c != nil || !errors.Is(err, tt.want) {
				t.Fatalf("got %v, %v; want %v", c, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not say %q", err, tt.message)
			}
		})
	}
}

func TestUnsupportedVersionIsMalformed(t *testing.T) {
	_, err := ParseCiphertext([]byte{0x02})
	if !errors.Is(err, ErrUnsupportedVersion) || !errors.Is(err, ErrMalformedCiphertext) {
		t.Fatalf("got %v, want both ErrUnsupportedVersion and ErrMalformedCiphertext", err)
	}
}

func TestParseCiphertextAcceptsOnlyTagLengthSealed(t *testing.T) {
	blob := (&Ciphertext{Header: testHeader(), Sealed: make([]byte, TagSize)}).Marshal()
	if _, err := ParseCiphertext(blob); err != nil {
		t.Fatalf("a blob with an empty plaintext is well formed: %v", err)
	}
}

func TestAssociatedDataIsHeaderThenContext(t *testing.T) {
	header, _ := testHeader().MarshalBinary()
	ec := map[string]string{"tenant": "acme"}
	got := AssociatedData(header, ec)
	if want := append(bytes.Clone(header), CanonicalContext(ec)...); !bytes.Equal(got, want) {
		t.Fatalf("AssociatedData = %x, want %x", got, want)
	}
}

func FuzzParseCiphertext(f *testing.F) {
	g := loadGolden(f)
	for _, v := range g.Vectors {
		f.Add([]byte(v.Blob))
	}
	for _, n := range g.Negative {
		f.Add([]byte(n.Blob))
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		c, err := ParseCiphertext(blob)
		if err != nil {
			if c != nil || !errors.Is(err, ErrMalformedCiphertext) {
				t.Fatalf("got %v, %v: errors must be ErrMalformedCiphertext with no result", c, err)
			}
			return
		}
		if len(c.Sealed) < TagSize {
			t.Fatalf("accepted a sealed part of %d bytes", len(c.Sealed))
		}
		if got := c.Marshal(); !bytes.Equal(got, blob) {
			t.Fatalf("Marshal does not round-trip:\n got %x\nwant %x", got, blob)
		}
	})
}

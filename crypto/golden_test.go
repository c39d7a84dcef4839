package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden vectors pin the version-1 format: every run opens each blob and
// re-seals it byte for byte. They are written once, by
// writeGoldenVectorsOnce behind -update, which refuses to overwrite the file.
// A format change gets a new version byte and a new file, never edited
// vectors: blobs made by older builds must keep decrypting.
var updateGolden = flag.Bool("update", false, "write testdata/golden-v1.json if it does not exist yet")

const goldenFile = "testdata/golden-v1.json"

type goldenFileV1 struct {
	Comment  string           `json:"comment"`
	Vectors  []goldenVector   `json:"vectors"`
	Negative []negativeVector `json:"negative"`
}

type goldenVector struct {
	Name       string            `json:"name"`
	BackingKey hexBytes          `json:"backing_key"`
	KeyID      string            `json:"key_id"`
	VersionID  hexBytes          `json:"version_id"`
	Salt       hexBytes          `json:"salt"`
	Nonce      hexBytes          `json:"nonce"`
	Context    map[string]string `json:"context"`
	Plaintext  hexBytes          `json:"plaintext"`
	Blob       hexBytes          `json:"blob"`
}

type negativeVector struct {
	Name       string            `json:"name"`
	BackingKey hexBytes          `json:"backing_key"`
	Context    map[string]string `json:"context"`
	Blob       hexBytes          `json:"blob"`
	// Error names the sentinel that must reject the blob.
	Error string `json:"error"`
}

type hexBytes []byte

func (b hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(b)), nil }

func (b *hexBytes) UnmarshalText(s []byte) error {
	d, err := hex.DecodeString(string(s))
	*b = d
	return err
}

var sentinelsByName = map[string]error{
	"ErrMalformedCiphertext": ErrMalformedCiphertext,
	"ErrUnsupportedVersion":  ErrUnsupportedVersion,
	"ErrDecrypt":             ErrDecrypt,
}

func (v goldenVector) header() Header {
	h := Header{KeyID: v.KeyID}
	copy(h.VersionID[:], v.VersionID)
	copy(h.Salt[:], v.Salt)
	copy(h.Nonce[:], v.Nonce)
	return h
}

func loadGolden(tb testing.TB) goldenFileV1 {
	tb.Helper()
	data, err := os.ReadFile(goldenFile)
	if err != nil {
		tb.Fatalf("reading golden vectors: %v", err)
	}
	var g goldenFileV1
	if err := json.Unmarshal(data, &g); err != nil {
		tb.Fatalf("decoding %s: %v", goldenFile, err)
	}
	if len(g.Vectors) == 0 || len(g.Negative) == 0 {
		tb.Fatalf("%s holds no vectors", goldenFile)
	}
	return g
}

func TestGolden(t *testing.T) {
	if *updateGolden {
		writeGoldenVectorsOnce(t)
	}
	g := loadGolden(t)
	for _, v := range g.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			key := NewSecret(bytes.Clone(v.BackingKey))
			c, err := ParseCiphertext(v.Blob)
			if err != nil {
				t.Fatalf("ParseCiphertext: %v", err)
			}
			if c.Header != v.header() {
				t.Errorf("parsed header %+v, want %+v", c.Header, v.header())
			}
			pt, err := Open(key, c, v.Context)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(pt.Bytes(), v.Plaintext) {
				t.Errorf("Open gave a different plaintext")
			}
			blob, err := Seal(key, v.header(), v.Plaintext, v.Context)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if !bytes.Equal(blob, v.Blob) {
				t.Errorf("Seal output differs from the golden blob:\n got %x\nwant %x", blob, []byte(v.Blob))
			}
		})
	}
	for _, n := range g.Negative {
		t.Run("reject/"+n.Name, func(t *testing.T) {
			want, ok := sentinelsByName[n.Error]
			if !ok {
				t.Fatalf("unknown sentinel %q", n.Error)
			}
			err := openBlob(NewSecret(bytes.Clone(n.BackingKey)), n.Blob, n.Context)
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %s", err, n.Error)
			}
			if (want == ErrDecrypt) == errors.Is(err, ErrMalformedCiphertext) {
				t.Fatalf("error %v mixes up malformed and unverifiable", err)
			}
		})
	}
}

// openBlob is what Decrypt does with a blob once it has the key.
func openBlob(key *Secret, blob []byte, ec map[string]string) error {
	c, err := ParseCiphertext(blob)
	if err != nil {
		return err
	}
	pt, err := Open(key, c, ec)
	if err == nil {
		pt.Zero()
	}
	return err
}

// goldenBytes gives reproducible filler so the generator is deterministic.
func goldenBytes(label string, n int) []byte {
	var out []byte
	for i := 0; len(out) < n; i++ {
		sum := sha256.Sum256(fmt.Appendf(nil, "trent golden %s %d", label, i))
		out = append(out, sum[:]...)
	}
	return out[:n]
}

func writeGoldenVectorsOnce(t *testing.T) {
	if _, err := os.Stat(goldenFile); err == nil {
		t.Fatalf("%s exists and is frozen; a format change needs a new version byte and a new file", goldenFile)
	}
	keyA, keyB := goldenBytes("backing key A", 32), goldenBytes("backing key B", 32)
	uuid := "1234abcd-12ab-34cd-56ef-1234567890ab"
	mrk := "mrk-" + hex.EncodeToString(goldenBytes("mrk", 16))
	multi := map[string]string{
		"tenant":     "acme",
		"department": "财务",
		"emoji-🔑":    "✓ ok",
		"Zürich":     "naïve café",
	}
	specs := []struct {
		name, keyID string
		key         []byte
		ec          map[string]string
		pt          []byte
	}{
		{"empty-context", uuid, keyA, nil, goldenBytes("data key", 32)},
		{"multi-key-unicode-context", uuid, keyA, multi, []byte("attack at dawn")},
		{"one-byte-plaintext", uuid, keyA, map[string]string{"a": "b"}, []byte{0}},
		{"max-plaintext-4096", uuid, keyA, map[string]string{"purpose": "max"}, goldenBytes("max", MaxPlaintext)},
		{"mrk-key-id", mrk, keyA, map[string]string{"region": "eu-1"}, []byte("multi-region")},
		{"max-length-key-id", strings.Repeat("k", MaxKeyIDLen), keyB, nil, []byte("long id")},
		{"empty-value-context", uuid, keyA, map[string]string{"k": ""}, []byte("empty value")},
		{"bytewise-key-order", uuid, keyB, map[string]string{"B": "1", "a": "2", "é": "3", "Z": "4", "aa": "5"}, []byte("order")},
	}
	g := goldenFileV1{Comment: "Trent ciphertext format version 1. Frozen: see crypto/DESIGN.md."}
	for _, s := range specs {
		h := Header{KeyID: s.keyID}
		copy(h.VersionID[:], goldenBytes(s.name+" version", VersionIDSize))
		copy(h.Salt[:], goldenBytes(s.name+" salt", SaltSize))
		copy(h.Nonce[:], goldenBytes(s.name+" nonce", NonceSize))
		blob, err := Seal(NewSecret(bytes.Clone(s.key)), h, s.pt, s.ec)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		g.Vectors = append(g.Vectors, goldenVector{
			Name: s.name, BackingKey: s.key, KeyID: s.keyID, VersionID: h.VersionID[:],
			Salt: h.Salt[:], Nonce: h.Nonce[:], Context: s.ec, Plaintext: s.pt, Blob: blob,
		})
	}
	g.Negative = negativeVectors(g.Vectors[1], keyB)
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenFile, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", goldenFile)
}

// negativeVectors derives rejected blobs from base, which must have a
// multi-key context and a uuid key id.
func negativeVectors(base goldenVector, otherKey []byte) []negativeVector {
	idEnd := 2 + len(base.KeyID)
	versionAt, saltAt, nonceAt := idEnd, idEnd+VersionIDSize, idEnd+VersionIDSize+SaltSize
	hdrLen := nonceAt + NonceSize
	flip := func(i int, mask byte) []byte {
		b := bytes.Clone(base.Blob)
		b[i] ^= mask
		return b
	}
	set := func(i int, v byte) []byte {
		b := bytes.Clone(base.Blob)
		b[i] = v
		return b
	}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base.Context)
		m[k] = v
		return m
	}
	without := func(k string) map[string]string {
		m := maps.Clone(base.Context)
		delete(m, k)
		return m
	}
	otherID := bytes.Clone(base.Blob)
	copy(otherID[2:idEnd], "99999999-9999-9999-9999-999999999999")
	ec := base.Context
	n := []negativeVector{
		{"empty-blob", nil, ec, []byte{}, "ErrMalformedCiphertext"},
		{"version-byte-flipped", nil, ec, flip(0, 0x02), "ErrUnsupportedVersion"},
		{"version-byte-zero", nil, ec, set(0, 0x00), "ErrUnsupportedVersion"},
		{"key-id-length-zero", nil, ec, set(1, 0), "ErrMalformedCiphertext"},
		{"key-id-length-past-end", nil, ec, set(1, 0xff), "ErrMalformedCiphertext"},
		{"key-id-bit-flipped-to-invalid-char", nil, ec, flip(2, 0x10), "ErrMalformedCiphertext"},
		{"key-id-bit-flipped-to-valid-char", nil, ec, flip(2, 0x02), "ErrDecrypt"},
		{"key-id-replaced", nil, ec, otherID, "ErrDecrypt"},
		{"version-id-bit-flipped", nil, ec, flip(versionAt+7, 0x01), "ErrDecrypt"},
		{"salt-bit-flipped", nil, ec, flip(saltAt+16, 0x80), "ErrDecrypt"},
		{"nonce-bit-flipped", nil, ec, flip(nonceAt+5, 0x04), "ErrDecrypt"},
		{"ciphertext-bit-flipped", nil, ec, flip(hdrLen+3, 0x01), "ErrDecrypt"},
		{"tag-bit-flipped", nil, ec, flip(len(base.Blob)-1, 0x40), "ErrDecrypt"},
		{"truncated-in-header", nil, ec, base.Blob[:40], "ErrMalformedCiphertext"},
		{"truncated-to-header", nil, ec, base.Blob[:hdrLen], "ErrMalformedCiphertext"},
		{"truncated-inside-tag", nil, ec, base.Blob[:hdrLen+TagSize-1], "ErrMalformedCiphertext"},
		{"last-byte-dropped", nil, ec, base.Blob[:len(base.Blob)-1], "ErrDecrypt"},
		{"byte-appended", nil, ec, append(bytes.Clone(base.Blob), 0), "ErrDecrypt"},
		{"wrong-context-value", nil, with("tenant", "evil"), base.Blob, "ErrDecrypt"},
		{"extra-context-key", nil, with("extra", "1"), base.Blob, "ErrDecrypt"},
		{"missing-context-key", nil, without("tenant"), base.Blob, "ErrDecrypt"},
		{"no-context", nil, nil, base.Blob, "ErrDecrypt"},
		{"other-backing-key", otherKey, ec, base.Blob, "ErrDecrypt"},
	}
	for i := range n {
		if n[i].BackingKey == nil {
			n[i].BackingKey = base.BackingKey
		}
	}
	return n
}

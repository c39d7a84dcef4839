package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
)

func TestCanonicalContextEncoding(t *testing.T) {
	tests := []struct {
		name string
		ec   map[string]string
		want []byte
	}{
		{"nil", nil, []byte{0}},
		{"empty", map[string]string{}, []byte{0}},
		{"one pair", map[string]string{"a": "bc"}, []byte{1, 1, 'a', 2, 'b', 'c'}},
		{"empty value", map[string]string{"k": ""}, []byte{1, 1, 'k', 0}},
		{
			"sorted bytewise, not by case or locale",
			map[string]string{"b": "2", "B": "1", "é": "3"},
			[]byte{3, 1, 'B', 1, '1', 1, 'b', 1, '2', 2, 0xc3, 0xa9, 1, '3'},
		},
		{
			"multi-byte length prefix",
			map[string]string{"k": strings.Repeat("v", 200)},
			append([]byte{1, 1, 'k', 0xc8, 0x01}, strings.Repeat("v", 200)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CanonicalContext(tt.ec)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("CanonicalContext = %x, want %x", got, tt.want)
			}
			if n := canonicalContextSize(tt.ec); n != len(got) {
				t.Fatalf("canonicalContextSize = %d, encoding is %d bytes", n, len(got))
			}
		})
	}
}

func TestCanonicalContextSeparatesLookalikes(t *testing.T) {
	// Each pair would collide under a naive concatenation or k=v;k=v joining.
	pairs := [][2]map[string]string{
		{{"ab": "c"}, {"a": "bc"}},
		{{"a": "b", "c": "d"}, {"a": "b\x01\x01c\x01d"}},
		{{"a=b": ""}, {"a": "b="}},
		{{"k": ""}, {}},
		{{"a": "b;c=d"}, {"a": "b", "c": "d"}},
	}
	for _, p := range pairs {
		if bytes.Equal(CanonicalContext(p[0]), CanonicalContext(p[1])) {
			t.Errorf("%q and %q encode identically", p[0], p[1])
		}
	}
}

func TestEncryptionContextTypeIsAccepted(t *testing.T) {
	ec := EncryptionContext{"tenant": "acme"}
	if !bytes.Equal(CanonicalContext(ec), CanonicalContext(map[string]string{"tenant": "acme"})) {
		t.Fatal("EncryptionContext and its map encode differently")
	}
}

func TestValidateContext(t *testing.T) {
	// One pair whose encoding is exactly n bytes: 1 (count) + 1 + 1 (key
	// "k") + 2 (value length) + value.
	ofSize := func(n int) map[string]string { return map[string]string{"k": strings.Repeat("v", n-5)} }
	tests := []struct {
		name    string
		ec      map[string]string
		wantErr string // substring; "" means valid
	}{
		{"nil", nil, ""},
		{"empty", map[string]string{}, ""},
		{"unicode", map[string]string{"Zürich": "财务", "🔑": ""}, ""},
		{"at the size limit", ofSize(MaxContextSize), ""},
		{"over the size limit", ofSize(MaxContextSize + 1), "encoded size 8193 bytes exceeds the maximum 8192 bytes"},
		{"empty key", map[string]string{"": "x"}, "a key is empty"},
		{"key not UTF-8", map[string]string{"bad\xff": "x"}, `key "bad\xff" is not valid UTF-8`},
		{"value not UTF-8", map[string]string{"tenant": "\xc3"}, `value of key "tenant" is not valid UTF-8`},
		{"long key name is cut", map[string]string{strings.Repeat("k", 100) + "\xff": ""}, `key "` + strings.Repeat("k", 64) + `" is`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateContext(tt.ec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateContext: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidContext) {
				t.Fatalf("got %v, want ErrInvalidContext", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateContextNamesTheSameKeyEveryTime(t *testing.T) {
	ec := map[string]string{"z": "\xff", "a": "\xff", "m": "\xff"}
	for range 20 {
		if err := ValidateContext(ec); !strings.Contains(fmt.Sprint(err), `key "a"`) {
			t.Fatalf("got %v, want the first key in canonical order", err)
		}
	}
}

func FuzzCanonicalContext(f *testing.F) {
	for _, v := range loadGolden(f).Vectors {
		f.Add(contextToFuzzInput(v.Context), []byte{})
		f.Add(CanonicalContext(v.Context), contextToFuzzInput(v.Context))
	}
	f.Add([]byte("ab\x00c"), []byte("a\x00bc"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ma, mb := contextFromFuzzInput(a), contextFromFuzzInput(b)
		ea, eb := CanonicalContext(ma), CanonicalContext(mb)
		if bytes.Equal(ea, eb) != maps.Equal(ma, mb) {
			t.Fatalf("maps %q and %q: equal encodings %v, equal maps %v", ma, mb, bytes.Equal(ea, eb), maps.Equal(ma, mb))
		}
		back, err := decodeCanonicalContext(ea)
		if err != nil || !maps.Equal(back, ma) {
			t.Fatalf("decoding the encoding of %q gave %q, %v", ma, back, err)
		}
		// Read as an encoding, a is either rejected or is the one canonical
		// form of the map it decodes to.
		if m, err := decodeCanonicalContext(a); err == nil && !bytes.Equal(CanonicalContext(m), a) {
			t.Fatalf("%x decodes to %q, which encodes as %x", a, m, CanonicalContext(m))
		}
	})
}

// contextFromFuzzInput reads NUL-separated key, value, key, value... so the
// fuzzer can build maps of any size; a later duplicate key wins.
func contextFromFuzzInput(b []byte) map[string]string {
	if len(b) == 0 {
		return nil
	}
	fields := bytes.Split(b, []byte{0})
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		m[string(fields[i])] = string(fields[i+1])
	}
	return m
}

func contextToFuzzInput(ec map[string]string) []byte {
	var b []byte
	for _, k := range sortedKeys(nil, ec) {
		b = append(b, k...)
		b = append(b, 0)
		b = append(b, ec[k]...)
		b = append(b, 0)
	}
	return b
}

// decodeCanonicalContext inverts CanonicalContext and accepts nothing else:
// minimal varints, keys strictly ascending, no trailing bytes. That it exists
// is the proof the encoding is injective.
func decodeCanonicalContext(b []byte) (map[string]string, error) {
	count, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	if count > uint64(len(b))/2 { // each pair takes at least two bytes
		return nil, errors.New("pair count exceeds input")
	}
	m := make(map[string]string, count)
	prev := ""
	for i := range count {
		var k, v string
		if k, b, err = readString(b); err != nil {
			return nil, err
		}
		if v, b, err = readString(b); err != nil {
			return nil, err
		}
		if i > 0 && k <= prev {
			return nil, errors.New("keys not strictly ascending")
		}
		m[k], prev = v, k
	}
	if len(b) != 0 {
		return nil, errors.New("trailing bytes")
	}
	return m, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	x, n := binary.Uvarint(b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, x)) {
		return 0, nil, errors.New("bad or non-minimal uvarint")
	}
	return x, b[n:], nil
}

func readString(b []byte) (string, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(b)) {
		return "", nil, errors.New("string runs past the end")
	}
	return string(b[:n]), b[n:], nil
}

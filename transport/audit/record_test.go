package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestLineFormat pins the on-disk format DESIGN.md documents: key order,
// omitted empty fields, the hash field last, and the hash computed the way
// an external tool would, from the line's bytes alone.
func TestLineFormat(t *testing.T) {
	r := Record{
		Seq: 1, Time: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		Node: "n1", Region: "eu-1", Principal: "CN=app", Operation: "Encrypt",
		KeyID: "k1", KeyVersion: "v1", Alias: "alias/app", GrantID: "g1",
		EncryptionContext: map[string]string{"b": "2", "a": "1<"},
		Outcome:           OutcomeDenied, ErrorCode: "AccessDeniedException",
		RequestID: "r1", SourceAddr: "10.0.0.1:5000", PrevHash: zeroHash,
		Hash: "ignored",
	}
	line, h, err := encode(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"seq":1,"time":"2026-03-01T12:00:00.123456789Z","node":"n1","region":"eu-1",` +
		`"principal":"CN=app","operation":"Encrypt","key_id":"k1","key_version":"v1","alias":"alias/app",` +
		`"grant_id":"g1","encryption_context":{"a":"1\u003c","b":"2"},"outcome":"denied",` +
		`"error_code":"AccessDeniedException","request_id":"r1","source_addr":"10.0.0.1:5000",` +
		`"prev":"0000000000000000000000000000000000000000000000000000000000000000"`
	if !strings.HasPrefix(string(line), want+`,"hash":"`) {
		t.Fatalf("line =\n%s\nwant prefix\n%s", line, want)
	}
	// The external recipe: cut `,"hash":"<64 hex>"}` off the end, close the
	// object with "}", SHA-256 it.
	s := strings.TrimSuffix(string(line), "\n")
	i := strings.LastIndex(s, `,"hash":"`)
	hashed := s[:i] + "}"
	sum := sha256.Sum256([]byte(hashed))
	if got := hex.EncodeToString(sum[:]); got != h || s[i:] != `,"hash":"`+h+`"}` {
		t.Fatalf("hash %s, line ends %s; want %s", got, s[i:], h)
	}
	if hashed != want+"}" {
		t.Fatalf("hashed bytes =\n%s", hashed)
	}

	// Empty optional fields are omitted; required ones stay.
	line, _, err = encode(nil, &Record{Seq: 2, Time: r.Time, Operation: "Decrypt", Outcome: OutcomeError,
		EncryptionContext: map[string]string{}, PrevHash: h})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"key_id", "key_version", "alias", "grant_id", "encryption_context", "error_code"} {
		if bytes.Contains(line, []byte(`"`+k+`"`)) {
			t.Errorf("empty %s is not omitted: %s", k, line)
		}
	}
	for _, k := range []string{"node", "region", "principal", "request_id", "source_addr"} {
		if !bytes.Contains(line, []byte(`"`+k+`":""`)) {
			t.Errorf("empty %s is omitted: %s", k, line)
		}
	}
	// The line decodes back to the record, hash included.
	var back Record
	if err := json.Unmarshal(line, &back); err != nil || back.Seq != 2 || back.PrevHash != h || len(back.Hash) != 64 {
		t.Fatalf("decoded %+v, %v", back, err)
	}
}

// TestEncodeIsMarshal: the writer's assembled lines are exactly
// json.Marshal of the body, whatever the strings hold.
func TestEncodeIsMarshal(t *testing.T) {
	odd := []string{"", "plain", "<&>", "\u2028\u2029", "\x00\x1f\"\\", "\xff\xfe invalid utf-8", "ünïcödé 🔑", "a\nb\r\tc"}
	prev := zeroHash
	var log []byte
	for i, s := range odd {
		r := Record{Seq: uint64(i + 1), Time: time.Unix(int64(i), int64(i)).UTC(), Node: s, Region: s, Principal: s,
			Operation: s, KeyID: s, KeyVersion: s, Alias: s, GrantID: s, EncryptionContext: map[string]string{s: s, s + "2": s},
			Outcome: OutcomeError, ErrorCode: s, RequestID: s, SourceAddr: s, PrevHash: prev}
		sanitize(&r) // as Append does
		line, h, err := encode(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(body(r))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(line[:len(line)-hashTail-1]) + "}"; got != string(want) {
			t.Fatalf("%q: line\n%s\nwant\n%s", s, got, want)
		}
		log = append(log, line...)
		prev = h
	}
	if n, err := Verify(bytes.NewReader(log)); n != len(odd) || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestVerifyEmpty(t *testing.T) {
	if n, err := Verify(strings.NewReader("")); n != 0 || err != nil {
		t.Fatalf("Verify(empty) = %d, %v", n, err)
	}
}

// TestVerifyEveryByteFlip flips each byte of a small log in three ways;
// Verify must fail at the line holding that byte (a newline belongs to the
// line it ends).
func TestVerifyEveryByteFlip(t *testing.T) {
	t.Parallel()
	_, data := writeLog(t, 6)
	if n, err := Verify(bytes.NewReader(data)); n != 6 || err != nil {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	masks := []byte{0x01, 0x20, 0xff}
	if raceEnabled {
		masks = masks[:1]
	}
	line := 1
	for pos := range data {
		for _, mask := range masks {
			bad := bytes.Clone(data)
			bad[pos] ^= mask
			reason := ""
			if pos == len(data)-1 {
				reason = "truncated last line"
			}
			brokenAt(t, fmt.Sprintf("byte %d ^ %#x", pos, mask), bad, line, uint64(line), reason)
		}
		if data[pos] == '\n' {
			line++
		}
	}
}

// TestVerifyRandomFlips does the same on a larger log, for a sample of
// positions and masks.
func TestVerifyRandomFlips(t *testing.T) {
	t.Parallel()
	_, data := writeLog(t, 150)
	lineOf := make([]int, len(data))
	line := 1
	for i, c := range data {
		lineOf[i] = line
		if c == '\n' {
			line++
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	samples := 2000
	if raceEnabled {
		samples = 150
	}
	for range samples {
		pos := rng.IntN(len(data))
		mask := byte(1 + rng.IntN(255))
		bad := bytes.Clone(data)
		bad[pos] ^= mask
		brokenAt(t, fmt.Sprintf("byte %d ^ %#x", pos, mask), bad, lineOf[pos], uint64(lineOf[pos]), "")
	}
}

// TestVerifyLineEdits: deleting, reordering, duplicating or inserting lines.
func TestVerifyLineEdits(t *testing.T) {
	_, data := writeLog(t, 8)
	lines := splitLines(data)
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	cat := func(parts ...[][]byte) [][]byte {
		var out [][]byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(i int) [][]byte { return [][]byte{lines[i]} }

	brokenAt(t, "delete first", join(lines[1:]...), 1, 1, "seq gap: got 2, want 1")
	brokenAt(t, "delete 4th", join(cat(lines[:3], lines[4:])...), 4, 4, "seq gap: got 5, want 4")
	brokenAt(t, "swap 3rd and 4th", join(cat(lines[:2], one(3), one(2), lines[4:])...), 3, 3, "seq gap: got 4, want 3")
	brokenAt(t, "duplicate 5th", join(cat(lines[:5], one(4), lines[5:])...), 6, 6, "seq gap: got 5, want 6")
	brokenAt(t, "empty line", join(cat(lines[:2], [][]byte{[]byte("\n")}, lines[2:])...), 3, 3, "malformed line")
	brokenAt(t, "last line without newline", data[:len(data)-1], 8, 8, "truncated last line")
	brokenAt(t, "last line half written", data[:len(data)-40], 8, 8, "truncated last line")

	// A forged record with the right seq and prev and a correct hash of its
	// own: the record after it no longer links.
	var prev Record
	if err := json.Unmarshal(lines[2], &prev); err != nil {
		t.Fatal(err)
	}
	forged := testRecord(99)
	forged.Time = prev.Time
	forged.Seq, forged.PrevHash = 4, prev.Hash
	fl, _, err := encode(nil, &forged)
	if err != nil {
		t.Fatal(err)
	}
	brokenAt(t, "forged insert", join(cat(lines[:3], [][]byte{fl}, lines[3:])...), 5, 5, "seq gap: got 4, want 5")
	// The same forgery replacing the real 4th record: the 5th's prev breaks.
	brokenAt(t, "forged replace", join(cat(lines[:3], [][]byte{fl}, lines[4:])...), 5, 5, "prev mismatch")
	// A record rewritten with a recomputed hash but not re-chained.
	var r5 Record
	if err := json.Unmarshal(lines[4], &r5); err != nil {
		t.Fatal(err)
	}
	r5.Principal = "CN=someone-else"
	rl, _, err := encode(nil, &r5)
	if err != nil {
		t.Fatal(err)
	}
	brokenAt(t, "rehashed edit", join(cat(lines[:4], [][]byte{rl}, lines[5:])...), 6, 6, "prev mismatch")

	// Well-hashed but non-canonical bytes (whitespace, key order) are
	// rejected: a verifier and the writer must agree on one encoding.
	s := strings.Replace(string(lines[0]), `{"seq":1,`, `{"seq": 1,`, 1)
	s = s[:strings.LastIndex(s, `,"hash":"`)] + "}"
	sum := sha256.Sum256([]byte(s))
	nc := s[:len(s)-1] + `,"hash":"` + hex.EncodeToString(sum[:]) + "\"}\n"
	brokenAt(t, "non-canonical", join(cat([][]byte{[]byte(nc)}, lines[1:])...), 1, 1, "non-canonical encoding")

	// Deleting the last records cannot be seen from the file alone.
	if n, err := Verify(bytes.NewReader(join(lines[:7]...))); n != 7 || err != nil {
		t.Fatalf("Verify(without last line) = %d, %v", n, err)
	}
}

func TestVerifyLongLine(t *testing.T) {
	long := append(bytes.Repeat([]byte("x"), maxLine+10), '\n')
	brokenAt(t, "long line", long, 1, 1, "line too long")
}

// FuzzVerify: Verify never panics, and accepts only what it can account
// for.
func FuzzVerify(f *testing.F) {
	_, data := writeLog(f, 3)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"seq":1,"hash":"` + zeroHash + `"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Verify(bytes.NewReader(b))
		if err == nil && n != bytes.Count(b, []byte("\n")) {
			t.Fatalf("Verify = %d records, nil for %d lines", n, bytes.Count(b, []byte("\n")))
		}
	})
}

// FuzzEncode: the writer's encoding of a record is encoding/json's, byte
// for byte, whatever its strings hold.
func FuzzEncode(f *testing.F) {
	f.Add("CN=app", "Encrypt", "k1", "alias/a", "tenant", "a<b>&c", int64(1_700_000_000_123_456_789))
	f.Add("\u2028\u2029", "\x00\x1f\x7f", "\xff\xfe", "\"\\", "\b\f\n\r\t", "ünï 🔑", int64(0))
	f.Add("", "", "", "", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, principal, op, key, alias, k, v string, ns int64) {
		r := Record{Time: time.Unix(0, ns).UTC(), Node: k + v, Region: v, Principal: principal, Operation: op,
			KeyID: key, Alias: alias, EncryptionContext: map[string]string{k: v, v: k, k + "\x00": alias},
			Outcome: OutcomeAllowed, ErrorCode: v, RequestID: k, SourceAddr: principal}
		if y := r.Time.Year(); y < 0 || y > 9999 {
			return
		}
		sanitize(&r)
		want, err := marshalMiddle(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendMiddle(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("appendMiddle =\n%s\nencoding/json =\n%s", got, want)
		}
	})
}

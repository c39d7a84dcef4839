package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Outcomes of a request.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
)

// Record is one audited request. Field order is the order of the keys on
// disk; see DESIGN.md.
type Record struct {
	Seq               uint64            `json:"seq"`
	Time              time.Time         `json:"time"` // UTC, RFC 3339 with nanoseconds
	Node              string            `json:"node"`
	Region            string            `json:"region"`
	Principal         string            `json:"principal"`
	Operation         string            `json:"operation"`
	KeyID             string            `json:"key_id,omitempty"`
	KeyVersion        string            `json:"key_version,omitempty"`
	Alias             string            `json:"alias,omitempty"`
	GrantID           string            `json:"grant_id,omitempty"`
	EncryptionContext map[string]string `json:"encryption_context,omitempty"`
	Outcome           string            `json:"outcome"`              // OutcomeAllowed, OutcomeDenied or OutcomeError
	ErrorCode         string            `json:"error_code,omitempty"` // AWS exception name
	RequestID         string            `json:"request_id"`
	SourceAddr        string            `json:"source_addr"`
	PrevHash          string            `json:"prev"` // Hash of the previous record; 64 zeros for the first
	Hash              string            `json:"hash"` // hex SHA-256 of the record's line without the hash field
}

// body is Record without the hash field: the bytes the hash covers. The
// fields must stay identical to Record's (only tags differ) so that a Record
// converts to a body.
type body struct {
	Seq               uint64            `json:"seq"`
	Time              time.Time         `json:"time"`
	Node              string            `json:"node"`
	Region            string            `json:"region"`
	Principal         string            `json:"principal"`
	Operation         string            `json:"operation"`
	KeyID             string            `json:"key_id,omitempty"`
	KeyVersion        string            `json:"key_version,omitempty"`
	Alias             string            `json:"alias,omitempty"`
	GrantID           string            `json:"grant_id,omitempty"`
	EncryptionContext map[string]string `json:"encryption_context,omitempty"`
	Outcome           string            `json:"outcome"`
	ErrorCode         string            `json:"error_code,omitempty"`
	RequestID         string            `json:"request_id"`
	SourceAddr        string            `json:"source_addr"`
	PrevHash          string            `json:"prev"`
	Hash              string            `json:"-"`
}

const (
	// zeroHash is the PrevHash of the first record of a log.
	zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"
	// hashPrefix and hashSuffix surround the hex hash at the end of a line.
	hashPrefix = `,"hash":"`
	hashSuffix = `"}`
	// hashTail is the length of `,"hash":"<64 hex>"}`.
	hashTail = len(hashPrefix) + sha256.Size*2 + len(hashSuffix)
	// maxLine bounds a line, newline included. Append refuses a record
	// that would exceed it; readers reject longer lines.
	maxLine = 1 << 20
)

// ErrBroken reports a log whose chain does not verify. Every
// *BrokenLinkError matches it with errors.Is.
var ErrBroken = errors.New("audit: broken chain")

// BrokenLinkError is the first broken link of a log.
type BrokenLinkError struct {
	Seq    uint64 // the sequence number the record at Line should have
	Line   int    // 1-based line number; 0 when unknown (tail check at Open)
	Reason string
}

func (e *BrokenLinkError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("audit: broken chain at seq %d: %s", e.Seq, e.Reason)
	}
	return fmt.Sprintf("audit: broken chain at line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

// Is makes errors.Is(err, ErrBroken) true for a *BrokenLinkError.
func (e *BrokenLinkError) Is(target error) bool { return target == ErrBroken }

// The writer assembles a line from parts so that encoding a record runs in
// its caller's goroutine: seq is the first key and prev the last, so a line
// is seqHead + seq + middle + prevHead + prev + `"}` with the hash field
// spliced in before the closing brace, and only seq, prev and the hash wait
// for the writer. The result is byte for byte what json.Marshal gives for
// the whole body (Verify checks this; TestEncodeIsMarshal and FuzzEncode
// compare the two).
const (
	seqHead  = `{"seq":`
	prevHead = `"prev":"`
)

// appendMiddle appends r's encoding between the seq value and the prev key,
// both commas included. It is encoding/json's encoding of those fields,
// written out so that a record costs no reflection and no allocation: r's
// strings must be valid UTF-8 (sanitize) and its time in UTC with a four
// digit year (validate).
func appendMiddle(dst []byte, r *Record) []byte {
	dst = append(dst, `,"time":"`...)
	dst = r.Time.AppendFormat(dst, time.RFC3339Nano) // what Time.MarshalJSON writes
	dst = append(dst, `","node":`...)
	dst = appendString(dst, r.Node)
	dst = append(dst, `,"region":`...)
	dst = appendString(dst, r.Region)
	dst = append(dst, `,"principal":`...)
	dst = appendString(dst, r.Principal)
	dst = append(dst, `,"operation":`...)
	dst = appendString(dst, r.Operation)
	dst = appendOptional(dst, `,"key_id":`, r.KeyID)
	dst = appendOptional(dst, `,"key_version":`, r.KeyVersion)
	dst = appendOptional(dst, `,"alias":`, r.Alias)
	dst = appendOptional(dst, `,"grant_id":`, r.GrantID)
	if len(r.EncryptionContext) > 0 {
		dst = append(dst, `,"encryption_context":{`...)
		var small [8]string
		keys := small[:0]
		for k := range r.EncryptionContext {
			keys = append(keys, k)
		}
		slices.Sort(keys) // encoding/json sorts map keys by their bytes too
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, r.EncryptionContext[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, r.Outcome)
	dst = appendOptional(dst, `,"error_code":`, r.ErrorCode)
	dst = append(dst, `,"request_id":`...)
	dst = appendString(dst, r.RequestID)
	dst = append(dst, `,"source_addr":`...)
	dst = appendString(dst, r.SourceAddr)
	return append(dst, ',')
}

func appendOptional(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

// appendString appends s as json.Marshal encodes a string: HTML-safe, with
// U+2028 and U+2029 escaped. s is valid UTF-8.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			start = i + size
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// marshalMiddle is appendMiddle done by encoding/json: the reference the
// tests hold appendMiddle to.
func marshalMiddle(r *Record) ([]byte, error) {
	b := body(*r)
	b.Seq, b.PrevHash = 0, ""
	out, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	head, tail := seqHead+"0", prevHead+`"}`
	if !bytes.HasPrefix(out, []byte(head)) || !bytes.HasSuffix(out, []byte(tail)) {
		return nil, fmt.Errorf("unexpected encoding %.40q…", out) // a field order change
	}
	return out[len(head) : len(out)-len(tail)], nil
}

// lineLen bounds the length of the line made from a middle, newline
// included.
func lineLen(middle []byte) int {
	return len(seqHead) + 20 + len(middle) + len(prevHead) + sha256.Size*2 + 1 + hashTail + 1
}

// appendLine appends the line of the record with the given seq, prev and
// middle to dst, newline included, and sets prev to the record's hash.
func appendLine(dst []byte, seq uint64, prev *[sha256.Size * 2]byte, middle []byte) []byte {
	start := len(dst)
	dst = append(dst, seqHead...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, middle...)
	dst = append(dst, prevHead...)
	dst = append(dst, prev[:]...)
	dst = append(dst, `"}`...)
	sum := sha256.Sum256(dst[start:])
	hex.Encode(prev[:], sum[:])
	dst = dst[:len(dst)-1] // reopen the object
	dst = append(dst, hashPrefix...)
	dst = append(dst, prev[:]...)
	dst = append(dst, hashSuffix...)
	return append(dst, '\n')
}

// encode appends r's line, newline included, to dst and returns it with the
// record's hash. r.Seq and r.PrevHash must be set; r.Hash is ignored.
func encode(dst []byte, r *Record) ([]byte, string, error) {
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return dst, "", fmt.Errorf("audit: time %v out of range", r.Time)
	}
	var prev [sha256.Size * 2]byte
	if len(r.PrevHash) != len(prev) {
		return dst, "", fmt.Errorf("audit: prev hash %q is not %d hex digits", r.PrevHash, len(prev))
	}
	copy(prev[:], r.PrevHash)
	dst = appendLine(dst, r.Seq, &prev, appendMiddle(nil, r))
	return dst, string(prev[:]), nil
}

// chain checks lines one after the other.
type chain struct {
	line     int    // lines checked so far
	seq      uint64 // seq of the last good record
	prev     string // hash of the last good record
	anchored bool   // seq and prev are known; false only before the first line of a tail window
}

func newChain() *chain { return &chain{prev: zeroHash, anchored: true} }

// check verifies one line (without its newline) against the chain and
// advances it.
func (c *chain) check(line []byte) (*body, *BrokenLinkError) {
	c.line++
	want := c.seq + 1
	broken := func(format string, a ...any) *BrokenLinkError {
		return &BrokenLinkError{Seq: want, Line: c.line, Reason: fmt.Sprintf(format, a...)}
	}
	if len(line)+1 > maxLine {
		return nil, broken("line too long (%d bytes)", len(line))
	}
	n := len(line) - hashTail
	if n < 2 || line[0] != '{' || string(line[n:n+len(hashPrefix)]) != hashPrefix ||
		string(line[len(line)-len(hashSuffix):]) != hashSuffix {
		return nil, broken("malformed line: no hash field at its end")
	}
	h := line[n+len(hashPrefix) : len(line)-len(hashSuffix)]
	if !isLowerHex(h) {
		return nil, broken("malformed hash field")
	}
	// The hashed bytes are the line with the hash field cut out: close the
	// object where the field starts (restored before returning).
	saved := line[n]
	line[n] = '}'
	defer func() { line[n] = saved }()
	raw := line[:n+1]
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, broken("bad JSON: %v", err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != string(h) {
		return nil, broken("hash mismatch")
	}
	canon, err := json.Marshal(b)
	if err != nil || !bytes.Equal(canon, raw) {
		return nil, broken("non-canonical encoding")
	}
	if c.anchored {
		if b.Seq != want {
			return nil, broken("seq gap: got %d, want %d", b.Seq, want)
		}
		if b.PrevHash != c.prev {
			return nil, broken("prev mismatch: record links to %.12s…, previous record is %.12s…", b.PrevHash, c.prev)
		}
	}
	c.seq, c.prev, c.anchored = b.Seq, string(h), true
	b.Hash = string(h)
	return &b, nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Verify checks a whole log from its first record and returns the number of
// records that verify. The first broken link is returned as a
// *BrokenLinkError: a line that is not a well-formed record, a hash that does
// not match its line, a PrevHash that is not the previous record's hash, a
// sequence number that does not follow the previous one (the first record
// has seq 1), a last line without its newline, or anything but NUL bytes
// after the records (preallocated space; a crashed writer may leave pieces
// of an unacknowledged write there until the log is opened again). Verify
// cannot detect records cut off the end of a log; compare the head with a
// copy kept elsewhere for that.
func Verify(r io.Reader) (count int, err error) {
	c := newChain()
	lr := newLineReader(r)
	for {
		line, complete, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return count, err
		}
		if !complete {
			return count, &BrokenLinkError{Seq: c.seq + 1, Line: c.line + 1, Reason: "truncated last line (no newline)"}
		}
		if _, berr := c.check(line); berr != nil {
			return count, berr
		}
		count++
	}
	junk, err := lr.junkAfterEnd()
	if err != nil {
		return count, err
	}
	if junk >= 0 {
		return count, &BrokenLinkError{Seq: c.seq + 1, Line: c.line + 1,
			Reason: fmt.Sprintf("data after the end of the log at offset %d (a write torn by a crash, or tampering)", junk)}
	}
	return count, nil
}

// lineReader reads newline-terminated lines of at most maxLine bytes, up to
// the end of the log's data: the end of the file or its first NUL byte,
// where preallocated space starts.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	pos  int64 // bytes read from br
	end  bool  // reached the first NUL
	junk int64 // offset of a non-NUL byte seen after the first NUL, or -1
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10), junk: -1}
}

// next returns the next line without its newline. complete is false for a
// last line that has no newline. A line longer than maxLine is returned
// truncated to maxLine bytes (and complete), for the caller to reject.
// The line is valid until the next call.
func (lr *lineReader) next() (line []byte, complete bool, err error) {
	if lr.end {
		return nil, false, io.EOF
	}
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
		fragPos := lr.pos
		lr.pos += int64(len(frag))
		if i := bytes.IndexByte(frag, 0); i >= 0 {
			lr.end = true
			if j := firstNonNUL(frag[i:]); j >= 0 {
				lr.junk = fragPos + int64(i+j)
			}
			frag, err = frag[:i], io.EOF
		}
		if len(lr.buf)+len(frag) <= maxLine {
			lr.buf = append(lr.buf, frag...)
		} else if len(lr.buf) < maxLine {
			lr.buf = append(lr.buf, frag[:maxLine-len(lr.buf)]...)
		}
		switch {
		case err == nil:
			if len(lr.buf) >= maxLine {
				return lr.buf, true, nil
			}
			return lr.buf[:len(lr.buf)-1], true, nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			lr.end = true
			if len(lr.buf) == 0 {
				return nil, false, io.EOF
			}
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// junkAfterEnd reads what follows the end of the data, once next has
// returned io.EOF, and returns the offset of its first byte that is not NUL,
// or -1.
func (lr *lineReader) junkAfterEnd() (int64, error) {
	buf := make([]byte, 64<<10)
	for lr.junk < 0 {
		n, err := lr.br.Read(buf)
		if j := firstNonNUL(buf[:n]); j >= 0 {
			lr.junk = lr.pos + int64(j)
		}
		lr.pos += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return -1, err
		}
	}
	return lr.junk, nil
}

// firstNonNUL returns the index of the first byte of b that is not NUL, or
// -1.
func firstNonNUL(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

// sanitize replaces invalid UTF-8 in r's strings with U+FFFD, so that a
// line decodes and re-encodes to the same bytes and appendMiddle may assume
// valid strings. It allocates only for a string it has to change.
func sanitize(r *Record) {
	for _, p := range []*string{&r.Node, &r.Region, &r.Principal, &r.Operation, &r.KeyID, &r.KeyVersion,
		&r.Alias, &r.GrantID, &r.Outcome, &r.ErrorCode, &r.RequestID, &r.SourceAddr} {
		if !utf8.ValidString(*p) {
			*p = strings.ToValidUTF8(*p, "\uFFFD")
		}
	}
	for k, v := range r.EncryptionContext {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			r.EncryptionContext = sanitizeMap(r.EncryptionContext)
			break
		}
	}
}

// sanitizeMap copies m with its keys and values made valid UTF-8; keys that
// become equal keep the value of the greatest original key.
func sanitizeMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out[strings.ToValidUTF8(k, "\uFFFD")] = strings.ToValidUTF8(m[k], "\uFFFD")
	}
	return out
}

// validate checks what the caller of Append controls.
func validate(r *Record) error {
	switch r.Outcome {
	case OutcomeAllowed, OutcomeDenied, OutcomeError:
	default:
		return fmt.Errorf("audit: invalid outcome %q", r.Outcome)
	}
	if strings.TrimSpace(r.Operation) == "" {
		return errors.New("audit: record has no operation")
	}
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("audit: time %v out of range", r.Time)
	}
	return nil
}

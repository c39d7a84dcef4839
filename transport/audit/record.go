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

// The writer assembles a line from parts so that the expensive encoding of
// a record runs in its caller's goroutine: seq is the first key and prev the
// last, so a record marshaled with Seq 0 and an empty PrevHash is
// seqHead + "0" + middle + prevHead + `"}` and the writer only has to put the
// real seq and prev around the middle. The result is byte for byte what
// json.Marshal gives for the whole body (Verify checks this).
const (
	seqHead  = `{"seq":`
	prevHead = `"prev":"`
)

// marshalMiddle returns r's encoding between the seq value and the prev
// key, both commas included.
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
// middle to dst, newline included, and returns it with the record's hash.
func appendLine(dst []byte, seq uint64, prev string, middle []byte) ([]byte, string) {
	start := len(dst)
	dst = append(dst, seqHead...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, middle...)
	dst = append(dst, prevHead...)
	dst = append(dst, prev...)
	dst = append(dst, `"}`...)
	sum := sha256.Sum256(dst[start:])
	var h [sha256.Size * 2]byte
	hex.Encode(h[:], sum[:])
	dst = dst[:len(dst)-1] // reopen the object
	dst = append(dst, hashPrefix...)
	dst = append(dst, h[:]...)
	dst = append(dst, hashSuffix...)
	dst = append(dst, '\n')
	return dst, string(h[:])
}

// encode appends r's line, newline included, to dst and returns it with the
// record's hash. r.Seq and r.PrevHash must be set; r.Hash is ignored.
func encode(dst []byte, r *Record) ([]byte, string, error) {
	m, err := marshalMiddle(r)
	if err != nil {
		return dst, "", err
	}
	dst, h := appendLine(dst, r.Seq, r.PrevHash, m)
	return dst, h, nil
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
// has seq 1), or a last line without its newline. Verify cannot detect
// records cut off the end of a log; compare the head with a copy kept
// elsewhere for that.
func Verify(r io.Reader) (count int, err error) {
	c := newChain()
	lr := newLineReader(r)
	for {
		line, complete, err := lr.next()
		if err == io.EOF {
			return count, nil
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
}

// lineReader reads newline-terminated lines of at most maxLine bytes.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline. complete is false for a
// last line that has no newline. A line longer than maxLine is returned
// truncated to maxLine bytes (and complete), for the caller to reject.
// The line is valid until the next call.
func (lr *lineReader) next() (line []byte, complete bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.br.ReadSlice('\n')
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
			if len(lr.buf) == 0 {
				return nil, false, io.EOF
			}
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// sanitize replaces invalid UTF-8 in r's strings with U+FFFD, as
// encoding/json would, so that a line decodes and re-encodes to the same
// bytes.
func sanitize(r *Record) {
	for _, p := range []*string{&r.Node, &r.Region, &r.Principal, &r.Operation, &r.KeyID, &r.KeyVersion,
		&r.Alias, &r.GrantID, &r.Outcome, &r.ErrorCode, &r.RequestID, &r.SourceAddr} {
		*p = strings.ToValidUTF8(*p, "\uFFFD")
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

package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Filter selects records; zero fields match everything.
type Filter struct {
	KeyID     string // the record's KeyID, or its Alias (e.g. "alias/app")
	Principal string
	Operation string
	Since     time.Time // records at or after this time
}

func (f *Filter) match(r *Record) bool {
	return (f.KeyID == "" || r.KeyID == f.KeyID || r.Alias == f.KeyID) &&
		(f.Principal == "" || r.Principal == f.Principal) &&
		(f.Operation == "" || r.Operation == f.Operation) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since))
}

// Scan decodes the records of a log in order and calls fn for each one that
// matches f, stopping at fn's first error, which it returns. It does not
// verify the chain (Verify does); it stops at the end of the data (the
// first NUL byte, where preallocated space starts), skips a last line
// without its newline, which is a write in progress or a torn write, and
// fails on a line that is not a record.
func Scan(r io.Reader, f Filter, fn func(Record) error) error {
	lr := newLineReader(r)
	for n := 1; ; n++ {
		line, complete, err := lr.next()
		if err == io.EOF || (err == nil && !complete) {
			return nil
		}
		if err != nil {
			return err
		}
		rec, err := decode(line, n)
		if err != nil {
			return err
		}
		if f.match(&rec) {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
}

func decode(line []byte, n int) (Record, error) {
	var rec Record
	where := "near the end"
	if n > 0 {
		where = fmt.Sprintf("at line %d", n)
	}
	if len(line)+1 > maxLine {
		return rec, fmt.Errorf("audit: line too long %s", where)
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return rec, fmt.Errorf("audit: bad record %s: %w", where, err)
	}
	return rec, nil
}

// Tail returns the last n records of the log at path that match f, oldest
// first; n <= 0 returns all of them. It reads the file backwards, so the
// cost follows what it returns (and, with a narrow filter, how far back it
// has to look), not the size of the log. Like Scan it ignores preallocated
// space and what follows a NUL byte, skips an unfinished last line and does
// not verify the chain.
func Tail(path string, n int, f Filter) ([]Record, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer file.Close()
	if n <= 0 {
		var out []Record
		err := Scan(file, f, func(r Record) error { out = append(out, r); return nil })
		return out, err
	}
	fi, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	const chunk = 64 << 10
	var (
		out   []Record // newest first
		pos   = fi.Size()
		rest  []byte // bytes [pos, boundary): whole lines, newline-terminated
		found bool   // rest ends at the last newline of the log's data
	)
	for len(out) < n {
		// Split off the last line of rest if it is whole, i.e. preceded by
		// a newline or starting at the beginning of the file.
		if found && len(rest) > 0 {
			i := bytes.LastIndexByte(rest[:len(rest)-1], '\n')
			if i >= 0 || pos == 0 {
				rec, err := decode(rest[i+1:len(rest)-1], 0)
				if err != nil {
					return nil, err
				}
				if f.match(&rec) {
					out = append(out, rec)
				}
				rest = rest[:i+1]
				continue
			}
		}
		if pos == 0 {
			break
		}
		c := min(chunk, pos)
		pos -= c
		if len(rest) > maxLine+chunk {
			return nil, fmt.Errorf("audit: %s: line too long before offset %d", path, pos)
		}
		next := make([]byte, c, int(c)+len(rest))
		if _, err := file.ReadAt(next, pos); err != nil && err != io.EOF {
			return nil, fmt.Errorf("audit: %w", err)
		}
		rest = append(next, rest...)
		if z := bytes.IndexByte(rest, 0); z >= 0 {
			// The log's data ends at or before this NUL: what comes after
			// it is preallocated space or the remains of a torn write.
			out, rest, found = out[:0], rest[:z], false
		}
		if !found {
			if i := bytes.LastIndexByte(rest, '\n'); i >= 0 {
				rest, found = rest[:i+1], true // drop an unfinished last line
			}
		}
	}
	slices.Reverse(out)
	return out, nil
}

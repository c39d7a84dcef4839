package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScanFilters(t *testing.T) {
	_, data := writeLog(t, 40)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	all := scanAll(t, data, Filter{})
	if len(all) != 40 {
		t.Fatalf("%d records", len(all))
	}
	key1 := testRecord(1).KeyID
	for _, tc := range []struct {
		f    Filter
		want func(i int) bool
	}{
		{Filter{KeyID: key1}, func(i int) bool { return i%4 == 1 }},
		{Filter{KeyID: "alias/app-2"}, func(i int) bool { return i%4 == 2 }},
		{Filter{Principal: "CN=app-0,O=trent"}, func(i int) bool { return i%3 == 0 }},
		{Filter{Operation: "Decrypt"}, func(i int) bool { return i%4 == 1 }},
		{Filter{Since: base.Add(30 * time.Second)}, func(i int) bool { return i >= 30 }},
		{Filter{KeyID: key1, Principal: "CN=app-1,O=trent", Since: base.Add(10 * time.Second)},
			func(i int) bool { return i%4 == 1 && i%3 == 1 && i >= 10 }},
		{Filter{KeyID: "nope"}, func(int) bool { return false }},
	} {
		got := ids(scanAll(t, data, tc.f))
		var want []string
		for i := range 40 {
			if tc.want(i) {
				want = append(want, fmt.Sprintf("req-%d", i))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Scan(%+v) = %v; want %v", tc.f, got, want)
		}
	}

	// fn's error stops the scan.
	stop := errors.New("stop")
	n := 0
	if err := Scan(bytes.NewReader(data), Filter{}, func(Record) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Scan = %v after %d calls", err, n)
	}
	// An unfinished last line is skipped; a bad line is an error.
	if got := scanAll(t, append(bytes.Clone(data), `{"seq":41,"ti`...), Filter{}); len(got) != 40 {
		t.Fatalf("with a torn tail: %d records", len(got))
	}
	err := Scan(bytes.NewReader(append(bytes.Clone(data), "junk\n"...)), Filter{}, func(Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "line 41") {
		t.Fatalf("Scan(junk) = %v", err)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	// Enough records to span several of Tail's 64 KiB chunks.
	path, data := writeLog(t, 700)
	all := scanAll(t, data, Filter{})
	for _, f := range []Filter{
		{},
		{KeyID: testRecord(3).KeyID},
		{Principal: "CN=app-2,O=trent", Operation: "CreateKey"},
		{KeyID: "nope"},
	} {
		var match []Record
		for _, r := range all {
			if f.match(&r) {
				match = append(match, r)
			}
		}
		for _, n := range []int{1, 3, 10, 299, 700, 5000, 0} {
			got, err := Tail(path, n, f)
			if err != nil {
				t.Fatal(err)
			}
			want := match
			if n > 0 && n < len(match) {
				want = match[len(match)-n:]
			}
			if !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("Tail(%d, %+v) = %d records %v…; want %d", n, f, len(got), head(ids(got)), len(want))
			}
		}
	}
	// A write in progress at the end is not a record yet.
	os.WriteFile(path, append(bytes.Clone(data), `{"seq":701,"time":"20`...), 0o600)
	got, err := Tail(path, 2, Filter{})
	if err != nil || len(got) != 2 || got[1].Seq != 700 {
		t.Fatalf("Tail with a torn tail = %v, %v", ids(got), err)
	}
	// Small and odd files.
	dir := t.TempDir()
	for name, content := range map[string]string{"empty": "", "torn only": `{"seq":1`} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		if got, err := Tail(p, 5, Filter{}); err != nil || len(got) != 0 {
			t.Fatalf("Tail(%s) = %v, %v", name, got, err)
		}
	}
	p := filepath.Join(dir, "one")
	os.WriteFile(p, splitLines(data)[0], 0o600)
	if got, err := Tail(p, 5, Filter{}); err != nil || len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("Tail(one) = %v, %v", got, err)
	}
	if _, err := Tail(filepath.Join(dir, "missing"), 5, Filter{}); err == nil {
		t.Fatal("Tail(missing) = nil error")
	}
}

// TestReadersStopAtTheFirstNUL: what follows the records of a crashed log
// (preallocated space, and pieces of a write whose first pages were lost)
// is not read as records, and Verify reports it.
func TestReadersStopAtTheFirstNUL(t *testing.T) {
	t.Parallel()
	path, data := writeLog(t, 700) // several of Tail's 64 KiB chunks
	next, _, _ := encode(nil, &Record{Seq: 701, Operation: "Encrypt", Outcome: OutcomeAllowed, PrevHash: zeroHash})
	for name, tail := range map[string][]byte{
		"preallocated space":                      make([]byte, 300<<10),
		"lost page then a whole line":             cat(make([]byte, 4096), next, make([]byte, 300<<10)),
		"torn line, lost page, then a whole line": cat(next[:50], make([]byte, 70<<10), next, make([]byte, 100)),
	} {
		t.Run(name, func(t *testing.T) {
			bad := cat(data, tail)
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if got := scanAll(t, bad, Filter{}); len(got) != 700 || got[699].Seq != 700 {
				t.Fatalf("Scan read %d records", len(got))
			}
			for _, n := range []int{1, 5, 699} {
				got, err := Tail(path, n, Filter{})
				if err != nil || len(got) != n || got[n-1].Seq != 700 {
					t.Fatalf("Tail(%d) = %v, %v", n, ids(got), err)
				}
			}
			n, err := Verify(bytes.NewReader(bad))
			if firstNonNUL(tail) < 0 {
				if n != 700 || err != nil {
					t.Fatalf("Verify = %d, %v", n, err)
				}
				return
			}
			brokenAt(t, "junk after the end", bad, 701, 701, "")
			if firstNonNUL(tail) == 0 && !strings.Contains(err.Error(), "truncated last line") ||
				firstNonNUL(tail) > 0 && !strings.Contains(err.Error(), fmt.Sprintf("data after the end of the log at offset %d", len(data)+firstNonNUL(tail))) {
				t.Fatalf("Verify = %v", err)
			}
		})
	}
}

func scanAll(t *testing.T, data []byte, f Filter) []Record {
	t.Helper()
	var out []Record
	if err := Scan(bytes.NewReader(data), f, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.RequestID)
	}
	return out
}

func head(s []string) []string { return s[:min(len(s), 5)] }

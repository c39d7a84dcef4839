package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
)

var ops = []string{"Encrypt", "Decrypt", "GenerateDataKey", "CreateKey"}

// testRecord returns a plausible record; its fields vary with i.
func testRecord(i int) Record {
	r := Record{
		Node:       "node-1",
		Region:     "eu-1",
		Principal:  fmt.Sprintf("CN=app-%d,O=trent", i%3),
		Operation:  ops[i%len(ops)],
		KeyID:      fmt.Sprintf("1234abcd-12ab-34cd-56ef-%012d", i%4),
		KeyVersion: "v1",
		Outcome:    OutcomeAllowed,
		RequestID:  fmt.Sprintf("req-%d", i),
		SourceAddr: "10.0.0.7:51234",
	}
	if i%2 == 0 {
		r.Alias = fmt.Sprintf("alias/app-%d", i%4)
		r.EncryptionContext = map[string]string{"tenant": fmt.Sprint(i % 5), "purpose": "test <&>", "ünï": "cödé"}
	}
	if i%5 == 4 {
		r.Outcome, r.ErrorCode = OutcomeDenied, "AccessDeniedException"
	}
	if i%7 == 6 {
		r.GrantID = fmt.Sprintf("grant-%d", i)
	}
	return r
}

func testLogger(buf *testlog.Buffer) *slog.Logger {
	if buf == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(buf, nil))
}

func openLog(t testing.TB, path string) *Log {
	t.Helper()
	l, err := Open(Config{Path: path, Logger: testLogger(nil)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// writeLog creates a log of n records at a fresh path and returns the path
// and its bytes.
func writeLog(t testing.TB, n int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		r := testRecord(i)
		r.Time = base.Add(time.Duration(i) * time.Second)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

func readAll(t testing.TB, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	if err := Scan(f, Filter{}, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

func verifyFile(t testing.TB, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := Verify(f)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return n
}

// brokenAt asserts that data fails Verify at the given line and seq, with a
// reason starting with reason (if not empty), after count good records.
func brokenAt(t *testing.T, what string, data []byte, line int, seq uint64, reason string) {
	t.Helper()
	n, err := Verify(bytes.NewReader(data))
	var be *BrokenLinkError
	if !errors.As(err, &be) {
		t.Fatalf("%s: Verify = %d, %v; want a *BrokenLinkError", what, n, err)
	}
	if be.Line != line || be.Seq != seq || !strings.HasPrefix(be.Reason, reason) {
		t.Fatalf("%s: Verify = %v; want line %d, seq %d, reason %q…", what, err, line, seq, reason)
	}
	if n != line-1 {
		t.Fatalf("%s: Verify counted %d good records; want %d", what, n, line-1)
	}
	if !errors.Is(err, ErrBroken) {
		t.Fatalf("%s: errors.Is(%v, ErrBroken) = false", what, err)
	}
}

func splitLines(data []byte) [][]byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

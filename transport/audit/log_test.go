package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
)

func TestAppendChainsAndReopenContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	now := time.Date(2026, 3, 1, 12, 0, 0, 5, time.FixedZone("CET", 3600))
	l, err := Open(Config{Path: path, Logger: testLogger(nil), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if seq, h := l.Head(); seq != 0 || h != zeroHash {
		t.Fatalf("Head of a new log = %d, %s", seq, h)
	}
	given := time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("X", -7200))
	for i := range 10 {
		r := testRecord(i)
		r.Seq, r.PrevHash, r.Hash = 77, "caller's", "caller's" // overwritten
		if i == 3 {
			r.Time = given
		}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(path); bytes.Count(data, []byte("\n")) != i+1 {
			t.Fatalf("after %d appends the file has %d lines", i+1, bytes.Count(data, []byte("\n")))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), testRecord(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	recs := readAll(t, path)
	prev := zeroHash
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.PrevHash != prev || r.RequestID != fmt.Sprintf("req-%d", i) {
			t.Fatalf("record %d: seq %d prev %.8s request %s; want seq %d prev %.8s", i, r.Seq, r.PrevHash, r.RequestID, i+1, prev)
		}
		want := now.UTC()
		if i == 3 {
			want = given.UTC()
		}
		if !r.Time.Equal(want) || r.Time.Location() != time.UTC {
			t.Fatalf("record %d time %v; want %v in UTC", i, r.Time, want)
		}
		prev = r.Hash
	}
	if n := verifyFile(t, path); n != 10 {
		t.Fatalf("Verify = %d", n)
	}

	l = openLog(t, path)
	if seq, h := l.Head(); seq != 10 || h != prev {
		t.Fatalf("Head after reopen = %d, %.8s; want 10, %.8s", seq, h, prev)
	}
	for i := 10; i < 15; i++ {
		if err := l.Append(context.Background(), testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	recs = readAll(t, path)
	if len(recs) != 15 || recs[10].Seq != 11 || recs[10].PrevHash != prev {
		t.Fatalf("after reopen: %d records, 11th seq %d prev %.8s", len(recs), recs[10].Seq, recs[10].PrevHash)
	}
	if n := verifyFile(t, path); n != 15 {
		t.Fatalf("Verify = %d", n)
	}
}

func TestAppendRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	bad := []Record{
		{Operation: "Encrypt", Outcome: "ok"},
		{Operation: "", Outcome: OutcomeAllowed},
		{Operation: "Encrypt", Outcome: OutcomeAllowed, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Operation: "Encrypt", Outcome: OutcomeAllowed, EncryptionContext: map[string]string{"k": strings.Repeat("v", maxLine)}},
	}
	for i, r := range bad {
		if err := l.Append(context.Background(), r); err == nil {
			t.Errorf("Append(bad record %d) = nil", i)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, testRecord(0)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append(canceled) = %v", err)
	}
	// No seq was used by the failures.
	if err := l.Append(context.Background(), testRecord(1)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if recs := readAll(t, path); len(recs) != 1 || recs[0].Seq != 1 {
		t.Fatalf("records %+v", recs)
	}
}

// TestOversizedRecordFailsAlone: a record too large for a line fails alone;
// the records around it are committed and chained without it.
func TestOversizedRecordFailsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(Config{Path: path, Logger: testLogger(nil), MaxBatch: 16, MaxDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range 16 {
		wg.Go(func() {
			r := testRecord(i)
			if i == 5 {
				r.EncryptionContext = map[string]string{"k": strings.Repeat("v", maxLine)}
			}
			errs[i] = l.Append(context.Background(), r)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 5) {
			t.Fatalf("Append %d = %v", i, err)
		}
	}
	l.Close()
	if n := verifyFile(t, path); n != 15 {
		t.Fatalf("Verify = %d; want 15", n)
	}
}

func TestOpenRefusesTamperedLog(t *testing.T) {
	path, data := writeLog(t, 20)
	lines := splitLines(data)
	cases := map[string][]byte{
		"flipped byte in last record":   append(bytes.Clone(data[:len(data)-30]), append([]byte{data[len(data)-30] ^ 1}, data[len(data)-29:]...)...),
		"flipped byte in middle record": bytes.Replace(data, []byte(`"req-9"`), []byte(`"req-X"`), 1),
		"deleted middle record":         bytes.Join(append(append([][]byte{}, lines[:10]...), lines[11:]...), nil),
		"garbage line at the end":       append(bytes.Clone(data), "hello\n"...),
		// A damaged complete line is tampering, not a torn write, even
		// when a torn line follows it.
		"damaged last line and torn tail": append(bytes.Replace(bytes.Clone(data), []byte(`"req-19"`), []byte(`"req-1X"`), 1), `{"seq":21,"ti`...),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(Config{Path: path, Logger: testLogger(nil)})
			if err == nil {
				l.Close()
				t.Fatal("Open accepted a tampered log")
			}
			var be *BrokenLinkError
			if !errors.Is(err, ErrBroken) || !errors.As(err, &be) {
				t.Fatalf("Open = %v; want ErrBroken", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, bad) {
				t.Fatal("Open modified a tampered log")
			}
		})
	}
	// The lock was released by the failed Opens.
	os.WriteFile(path, data, 0o600)
	openLog(t, path)
}

// TestOpenLargeLog: a log longer than the tail window Open checks. Open
// resumes from the window and refuses a broken tail, reporting the seq it
// expected; damage before the window is for Verify to find.
func TestOpenLargeLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	pad := strings.Repeat("p", 4000)
	var wg sync.WaitGroup
	const n = 64 * 20 // ~5.4 MB > tailWindow
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				r := testRecord(g*20 + i)
				r.EncryptionContext = map[string]string{"pad": pad}
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	data, _ := os.ReadFile(path)
	if len(data) <= tailWindow {
		t.Fatalf("log is %d bytes, not larger than the tail window", len(data))
	}
	l = openLog(t, path)
	if seq, _ := l.Head(); seq != n {
		t.Fatalf("Head after reopen = %d; want %d", seq, n)
	}
	if err := l.Append(context.Background(), testRecord(0)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got := verifyFile(t, path); got != n+1 {
		t.Fatalf("Verify = %d", got)
	}

	data, _ = os.ReadFile(path)
	lines := splitLines(data)
	// Damage the second-to-last record: Open reports the seq it expected.
	bad := bytes.Join(lines[:n-1], nil)
	bad = append(bad, bytes.Replace(lines[n-1], []byte("pppp"), []byte("pqpp"), 1)...)
	bad = append(bad, lines[n]...)
	os.WriteFile(path, bad, 0o600)
	_, err := Open(Config{Path: path, Logger: testLogger(nil)})
	var be *BrokenLinkError
	if !errors.As(err, &be) || be.Seq != n || be.Line != 0 || be.Reason != "hash mismatch" {
		t.Fatalf("Open = %v; want hash mismatch at seq %d, line 0", err, n)
	}
	// Damage the first record: outside the window, Open cannot see it.
	bad = append(bytes.Replace(lines[0], []byte("req-"), []byte("rex-"), 1), bytes.Join(lines[1:], nil)...)
	os.WriteFile(path, bad, 0o600)
	openLog(t, path).Close()
	brokenAt(t, "first record", bad, 1, 1, "hash mismatch")
}

func TestTornTailIsTruncated(t *testing.T) {
	path, data := writeLog(t, 5)
	full, _, _ := encode(nil, &Record{Seq: 6, Operation: "Encrypt", Outcome: OutcomeAllowed, PrevHash: zeroHash})
	pad := make([]byte, 3000) // preallocated space the crashed writer had not reached
	for _, tc := range []struct {
		name    string
		tail    []byte
		dropped int // bytes of records reported dropped; 0: nothing to report
	}{
		{"half a record", full[:len(full)/2], len(full) / 2},
		{"record without its newline", full[:len(full)-1], len(full) - 1},
		{"one byte", []byte{'{'}, 1},
		{"half a record in preallocated space", cat(full[:len(full)/2], pad), len(full) / 2},
		// Pages of a write that did not reach the disk read as zeros; the
		// records end before the first of them.
		{"record with a lost page", cat(full[:40], make([]byte, 100), full[140:], pad), len(full)},
		{"lost page, then whole lines", cat(make([]byte, 100), full, full, pad), 100 + 2*len(full)},
		{"preallocated space only", pad, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(path, cat(data, tc.tail), 0o600)
			var logs testlog.Buffer
			l, err := Open(Config{Path: path, Logger: testLogger(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			// Open cuts the file after the last whole record.
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Fatalf("file after Open is %d bytes; want the %d bytes before the torn line", len(after), len(data))
			}
			reported := strings.Contains(logs.String(), "torn")
			if reported != (tc.dropped > 0) || (reported && !strings.Contains(logs.String(), fmt.Sprintf("bytes_dropped=%d", tc.dropped))) {
				t.Fatalf("want %d bytes reported dropped; log: %s", tc.dropped, logs.String())
			}
			if err := l.Append(context.Background(), testRecord(5)); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if n := verifyFile(t, path); n != 6 {
				t.Fatalf("Verify = %d", n)
			}
		})
	}
	// A file that is nothing but a torn line becomes an empty log.
	os.WriteFile(path, full[:10], 0o600)
	l := openLog(t, path)
	if seq, _ := l.Head(); seq != 0 {
		t.Fatalf("Head = %d", seq)
	}
	l.Close()
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Fatalf("size %d", fi.Size())
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestPreallocatedSpace: an open log is followed by zeroed space; readers
// stop at the end of the records, and Close gives the space back.
func TestPreallocatedSpace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	for i := range 50 {
		if err := l.Append(context.Background(), testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.space.wait() // the writer is idle: nothing else touches space
	data, _ := os.ReadFile(path)
	records := bytes.LastIndexByte(data, '\n') + 1
	if len(data) < records+preallocChunk || firstNonNUL(data[records:]) >= 0 {
		t.Fatalf("file of %d bytes, records end at %d: want %d zero bytes after them", len(data), records, preallocChunk)
	}
	if n := verifyFile(t, path); n != 50 {
		t.Fatalf("Verify = %d", n)
	}
	if recs := readAll(t, path); len(recs) != 50 {
		t.Fatalf("Scan read %d records", len(recs))
	}
	if recs, err := Tail(path, 3, Filter{}); err != nil || len(recs) != 3 || recs[2].Seq != 50 {
		t.Fatalf("Tail = %v, %v", ids(recs), err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data[:records]) {
		t.Fatalf("after Close the file is %d bytes; want the %d bytes of records", len(after), records)
	}
}

func TestOpenIsExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	if l2, err := Open(Config{Path: path, Logger: testLogger(nil)}); err == nil {
		l2.Close()
		t.Fatal("a second Open of the same log succeeded")
	}
	l.Close()
	openLog(t, path)
}

// TestGroupCommit: 64 goroutines × 200 appends share syncs.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	// A sync takes at least 0.2 ms, as on a disk (FIELD-NOTES: ~0.36 ms),
	// even where TMPDIR is a tmpfs and fdatasync costs nothing.
	l.syncFn = func() error {
		start := time.Now()
		err := l.fdatasync()
		time.Sleep(200*time.Microsecond - time.Since(start))
		return err
	}
	var maxBatch atomic.Int64
	l.onCommit = func(n int) {
		if int64(n) > maxBatch.Load() {
			maxBatch.Store(int64(n))
		}
	}
	const goroutines, each = 64, 200
	appendConcurrently(t, l, goroutines, each)
	syncs := l.syncs.Load()
	l.Close()
	const records = goroutines * each
	t.Logf("%d records, %d syncs (%.1f records/sync), largest batch %d", records, syncs, float64(records)/float64(syncs), maxBatch.Load())
	if syncs == 0 || syncs > records/8 {
		t.Fatalf("%d syncs for %d records: no group commit", syncs, records)
	}
	if n := verifyFile(t, path); n != records {
		t.Fatalf("Verify = %d", n)
	}
	seen := map[string]bool{}
	for _, r := range readAll(t, path) {
		seen[r.RequestID] = true
	}
	if len(seen) != records {
		t.Fatalf("%d distinct request ids; want %d", len(seen), records)
	}
}

func appendConcurrently(t *testing.T, l *Log, goroutines, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := testRecord(i)
				r.RequestID = fmt.Sprintf("g%d-%d", g, i)
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// primeLastBatch makes the log commit one batch of n records, as when n
// callers are served together, and returns the sizes of the batches
// committed so far and from now on. l is fresh: no Append has run yet.
func primeLastBatch(t *testing.T, l *Log, n int) func() []int {
	t.Helper()
	var mu sync.Mutex
	var sizes []int
	l.onCommit = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l.syncFn = func() error {
		once.Do(func() { close(blocked); <-release }) // hold the first sync
		return l.fdatasync()
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := l.Append(context.Background(), testRecord(0)); err != nil {
			t.Error(err)
		}
	})
	<-blocked
	for i := range n {
		wg.Go(func() {
			if err := l.Append(context.Background(), testRecord(1+i)); err != nil {
				t.Error(err)
			}
		})
	}
	for queued := 0; queued < n; runtime.Gosched() {
		l.mu.Lock()
		if l.cur != nil {
			queued = len(l.cur.ends)
		}
		l.mu.Unlock()
	}
	close(release)
	wg.Wait()
	got := func() []int { mu.Lock(); defer mu.Unlock(); return slices.Clone(sizes) }
	if s := got(); !slices.Equal(s, []int{1, n}) {
		t.Fatalf("batch sizes %v; want [1 %d]", s, n)
	}
	return got
}

// TestBatchWaitsForReturningCallers: after a batch of 8, the writer holds
// the next one until it is about as large.
func TestBatchWaitsForReturningCallers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	const delay = 20 * time.Second
	l, err := Open(Config{Path: path, Logger: testLogger(nil), MaxDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sizes := primeLastBatch(t, l, 8)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 7 {
		wg.Go(func() {
			if err := l.Append(context.Background(), testRecord(100+i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d >= delay/2 {
		t.Fatalf("7 appends took %v: the batch was held to MaxDelay", d)
	}
	if s := sizes(); !slices.Equal(s, []int{1, 8, 7}) {
		t.Fatalf("batch sizes %v; want [1 8 7]: the 7 records in one batch", s)
	}
	l.Close()
	if n := verifyFile(t, path); n != 16 {
		t.Fatalf("Verify = %d", n)
	}
}

// TestMaxDelay: a record that no other follows is held for MaxDelay at
// most, and only after a larger batch.
func TestMaxDelay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	const delay = 300 * time.Millisecond
	l, err := Open(Config{Path: path, Logger: testLogger(nil), MaxDelay: delay})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sizes := primeLastBatch(t, l, 4)
	start := time.Now()
	if err := l.Append(context.Background(), testRecord(10)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay-10*time.Millisecond {
		t.Fatalf("Append returned after %v; want the batch held for %v", d, delay)
	}
	// The last batch had one record: nothing is held any more.
	start = time.Now()
	for i := range 3 {
		if err := l.Append(context.Background(), testRecord(11+i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d >= delay {
		t.Fatalf("three appends one after the other took %v", d)
	}
	if s := sizes(); !slices.Equal(s, []int{1, 4, 1, 1, 1, 1}) {
		t.Fatalf("batch sizes %v", s)
	}
	l.Close()
	if n := verifyFile(t, path); n != 9 {
		t.Fatalf("Verify = %d", n)
	}
}

// TestSyncFailureIsSticky: after a failed sync nothing more is acknowledged.
func TestSyncFailureIsSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	var logs testlog.Buffer
	l, err := Open(Config{Path: path, Logger: testLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	calls := 0
	boom := errors.New("EIO")
	l.syncFn = func() error {
		calls++
		if calls >= 3 {
			return boom
		}
		return l.fdatasync()
	}
	for i := range 2 {
		if err := l.Append(context.Background(), testRecord(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := l.Append(context.Background(), testRecord(i)); !errors.Is(err, boom) {
			t.Fatalf("Append after a sync failure = %v", err)
		}
	}
	if calls != 3 {
		t.Fatalf("%d syncs; want no more after the failure", calls)
	}
	if err := l.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v", err)
	}
	if !strings.Contains(logs.String(), "write failed") {
		t.Fatalf("failure not logged: %s", logs.String())
	}
	// The unacknowledged record is on disk, whole; the log reopens.
	if n := verifyFile(t, path); n != 3 {
		t.Fatalf("Verify = %d", n)
	}
	openLog(t, path)
}

// TestCloseDrains: Appends racing with Close either fail with ErrClosed or
// are on disk when Close returns.
func TestCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	var acked atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 32 {
		wg.Go(func() {
			<-start
			for i := 0; ; i++ {
				err := l.Append(context.Background(), testRecord(g*1000+i))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				acked.Add(1)
			}
		})
	}
	close(start)
	// Close while appends are in flight: wait until some have been acknowledged.
	deadline := time.Now().Add(10 * time.Second)
	for acked.Load() < 64 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d appends acknowledged in 10s", acked.Load())
		}
		runtime.Gosched()
	}
	var closers sync.WaitGroup
	for range 3 { // concurrent Closes all wait for the drain
		closers.Go(func() {
			if err := l.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	closers.Wait()
	n := verifyFile(t, path)
	wg.Wait()
	if int64(n) != acked.Load() {
		t.Fatalf("%d records on disk, %d acknowledged", n, acked.Load())
	}
}

// TestAppendContextDone: a caller that stops waiting gets ctx.Err().
func TestAppendContextDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	release := make(chan struct{})
	l.syncFn = func() error { <-release; return l.fdatasync() }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Append(ctx, testRecord(0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append = %v", err)
	}
	close(release)
	l.Close()
	if n := verifyFile(t, path); n != 1 {
		t.Fatalf("Verify = %d", n)
	}
}

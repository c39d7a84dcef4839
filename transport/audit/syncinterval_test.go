package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openWithInterval(t *testing.T, path string, interval time.Duration) *Log {
	t.Helper()
	l, err := Open(Config{Path: path, Logger: testLogger(nil), SyncInterval: interval})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// With SyncInterval, Append returns once the record is in the file, while
// the sync is still to come; the sync follows, and Close leaves a log that
// verifies.
func TestSyncIntervalAcknowledgesWrittenRecords(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openWithInterval(t, path, 5*time.Millisecond)
	release := make(chan struct{})
	l.syncFn = func() error { <-release; return l.fdatasync() }

	for i := range 3 {
		if err := l.Append(context.Background(), testRecord(i)); err != nil {
			t.Fatalf("Append %d with every sync held back: %v", i, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(bytes.TrimRight(data, "\x00"), []byte("\n")); lines != 3 {
		t.Fatalf("%d records in the file before any sync returned, want 3", lines)
	}
	close(release)
	waitUntil(t, "the background sync ran", func() bool { return l.syncs.Load() > 0 })
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := verifyFile(t, path); n != 3 {
		t.Fatalf("Verify = %d records, want 3", n)
	}
}

// Many appends in a burst share a few background syncs.
func TestSyncIntervalBoundsSyncs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openWithInterval(t, path, 20*time.Millisecond)
	start := time.Now()
	appendConcurrently(t, l, 16, 50)
	elapsed := time.Since(start)
	syncs := l.syncs.Load()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// One sync per interval, plus the one a first write starts at once.
	if limit := uint64(elapsed/(20*time.Millisecond)) + 2; syncs > limit {
		t.Fatalf("%d background syncs in %v at a 20ms interval, want at most %d", syncs, elapsed, limit)
	}
	if n := verifyFile(t, path); n != 16*50 {
		t.Fatalf("Verify = %d records, want %d", n, 16*50)
	}
}

// A failed background sync is sticky: later Appends fail, so the node stops
// serving requests it could not audit durably.
func TestSyncIntervalFailureRefusesLaterAppends(t *testing.T) {
	t.Parallel()
	l := openWithInterval(t, filepath.Join(t.TempDir(), "audit.log"), time.Millisecond)
	diskGone := errors.New("disk gone")
	l.syncFn = func() error { return diskGone }
	if err := l.Append(context.Background(), testRecord(0)); err != nil {
		t.Fatalf("first Append: %v", err)
	}
	waitUntil(t, "an Append fails after the failed sync", func() bool {
		return errors.Is(l.Append(context.Background(), testRecord(1)), diskGone)
	})
	if err := l.Close(); !errors.Is(err, diskGone) {
		t.Fatalf("Close = %v, want the sync failure", err)
	}
}

func TestSyncIntervalMustNotBeNegative(t *testing.T) {
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "audit.log"), SyncInterval: -time.Second}); err == nil {
		t.Fatal("Open accepted a negative SyncInterval")
	}
}

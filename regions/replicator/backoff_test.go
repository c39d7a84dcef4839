package replicator

import (
	"testing"
	"time"
)

func TestRetryPacerBacksOffDoublingAndResets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var p retryPacer
	if !p.ready(now) {
		t.Fatal("a fresh pacer is not ready")
	}
	var waits []time.Duration
	for range 8 {
		waits = append(waits, p.failed(now, time.Second))
	}
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		if waits[i] != w*time.Millisecond {
			t.Fatalf("waits %v, want %v ms: doubling from 50 ms, capped at 1 s", waits, want)
		}
	}
	if p.ready(now.Add(999 * time.Millisecond)) {
		t.Error("ready before the wait ended")
	}
	if !p.ready(now.Add(time.Second)) {
		t.Error("not ready once the wait ended")
	}
	p.succeeded()
	if !p.ready(now) || p.failed(now, time.Second) != 50*time.Millisecond {
		t.Error("a success does not reset the backoff")
	}
}

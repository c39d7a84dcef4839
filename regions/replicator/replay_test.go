package replicator

import (
	"fmt"
	"testing"
	"time"
)

func TestReplayGuard(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newReplayGuard(10 * time.Minute)
	nonce := []byte("0123456789abcdef")
	if !g.admit(nonce, now, now) {
		t.Fatal("a fresh batch was refused")
	}
	if g.admit(nonce, now, now.Add(time.Second)) {
		t.Error("the same nonce was admitted twice")
	}
	for _, c := range []struct {
		name string
		sent time.Time
	}{
		{"older than the window", now.Add(-11 * time.Minute)},
		{"further ahead than the window", now.Add(11 * time.Minute)},
	} {
		if g.admit([]byte(c.name+"-nonce-0123456789"), c.sent, now) {
			t.Errorf("%s: admitted", c.name)
		}
	}
	// Within the window either way (clock skew) is fine.
	if !g.admit([]byte("skewed-nonce-0123456789"), now.Add(time.Minute), now) {
		t.Error("a batch a minute ahead was refused")
	}
	// Once the window has passed, a batch that old is refused by its time,
	// and the next admitted batch forgets the expired nonces.
	later := now.Add(12 * time.Minute) // past the window of every batch above
	if g.admit(nonce, now, later) {
		t.Error("an expired batch was admitted")
	}
	if !g.admit([]byte("later-nonce-0123456789"), later, later) {
		t.Fatal("a fresh batch was refused")
	}
	if _, kept := g.seen[string(nonce)]; kept || len(g.seen) != 1 {
		t.Errorf("after the window: %d nonces remembered, the expired one kept: %v", len(g.seen), kept)
	}
}

func TestReplayGuardBoundsMemoryWithoutAdmittingReplays(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newReplayGuard(time.Hour)
	first := []byte("first-nonce-0123456789")
	if !g.admit(first, now, now) {
		t.Fatal("refused")
	}
	for i := range maxRemembered {
		if !g.admit(fmt.Appendf(nil, "nonce-%08d-0123456789", i), now.Add(time.Duration(i+1)), now) {
			t.Fatalf("batch %d refused", i)
		}
	}
	if len(g.seen) > maxRemembered {
		t.Errorf("%d nonces remembered; the bound is %d", len(g.seen), maxRemembered)
	}
	// The first nonce was forgotten early: its replay must still fail.
	if g.admit(first, now, now) {
		t.Error("a replay of a forgotten nonce was admitted")
	}
}

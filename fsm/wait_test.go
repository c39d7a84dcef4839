package fsm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// applyNoop applies a (rejected, hence cheap) command at index.
func applyNoop(f *FSM, index uint64) {
	data, _ := Encode(wrap(t0, &fsmpb.DeregisterNode{}))
	f.Apply(index, data)
}

func TestWaitAppliedReturnsAtOnceWhenReached(t *testing.T) {
	f := New(Config{})
	applyNoop(f, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // even a dead context: the index is already there
	for _, index := range []uint64{0, 1, 3} {
		if err := f.WaitApplied(ctx, index); err != nil {
			t.Errorf("WaitApplied(%d) = %v", index, err)
		}
	}
}

func TestWaitAppliedReleasesWaitersInOrder(t *testing.T) {
	f := New(Config{})
	const waitersPerIndex = 50
	released := make(chan uint64, 10*waitersPerIndex)
	var wg sync.WaitGroup
	for index := uint64(1); index <= 10; index++ {
		for range waitersPerIndex {
			wg.Go(func() {
				if err := f.WaitApplied(context.Background(), index); err != nil {
					t.Error(err)
				}
				if got := f.AppliedIndex(); got < index {
					t.Errorf("released at %d while waiting for %d", got, index)
				}
				released <- index
			})
		}
	}
	waitFor(t, func() bool { return f.waiterCount() == 10*waitersPerIndex })

	applyNoop(f, 4) // indexes may be skipped (Raft configuration entries)
	waitFor(t, func() bool { return len(released) == 4*waitersPerIndex })
	for range 4 * waitersPerIndex {
		if index := <-released; index > 4 {
			t.Fatalf("waiter for %d released at 4", index)
		}
	}
	applyNoop(f, 10)
	wg.Wait()
	if n := f.waiterCount(); n != 0 {
		t.Errorf("%d waiters left registered", n)
	}
}

func TestWaitAppliedHonoursContext(t *testing.T) {
	f := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(ctx, 7) }()
	waitFor(t, func() bool { return f.waiterCount() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := f.waiterCount(); n != 0 {
		t.Errorf("%d waiters left after cancellation", n)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := f.WaitApplied(ctx, 7); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	applyNoop(f, 7)
	if err := f.WaitApplied(context.Background(), 7); err != nil {
		t.Error(err)
	}
}

func TestWaitAppliedAbandonedIndexesDoNotAccumulate(t *testing.T) {
	f := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for index := uint64(1); index <= 10_000; index++ {
		if err := f.WaitApplied(ctx, index); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	}
	f.waiters.mu.Lock()
	pending := len(f.waiters.pending)
	f.waiters.mu.Unlock()
	if pending > 100 {
		t.Errorf("%d abandoned indexes still queued", pending)
	}
}

func TestWaitAppliedConcurrentWithApply(t *testing.T) {
	f := New(Config{})
	const last = 2000
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for index := uint64(w); index <= last; index += 64 {
				if err := f.WaitApplied(context.Background(), index); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for index := uint64(1); index <= last; index++ {
		applyNoop(f, index)
	}
	wg.Wait()
}

func (f *FSM) waiterCount() int {
	f.waiters.mu.Lock()
	defer f.waiters.mu.Unlock()
	n := 0
	for _, slot := range f.waiters.byIndex {
		n += slot.waiting
	}
	return n
}

// waitFor polls cond; tests use it only to learn that goroutines have
// parked, which no API exposes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// steppedQuery is a query whose rounds the test releases one at a time; each returns its number.
type steppedQuery struct {
	started chan int
	release chan struct{}
	mu      sync.Mutex
	rounds  int
}

func newSteppedQuery() *steppedQuery {
	return &steppedQuery{started: make(chan int, 100), release: make(chan struct{})}
}

func (q *steppedQuery) query(ctx context.Context) (uint64, error) {
	q.mu.Lock()
	q.rounds++
	n := q.rounds
	q.mu.Unlock()
	q.started <- n
	select {
	case <-q.release:
		return uint64(n), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func queuedCallers(b *roundBatcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == nil {
		return 0
	}
	return b.next.callers
}

func TestRoundBatcherLateArrivalsJoinTheNextRound(t *testing.T) {
	q := newSteppedQuery()
	b := newRoundBatcher(context.Background(), time.Minute, q.query)
	defer b.close()

	first := make(chan uint64, 1)
	go func() {
		index, _ := b.do(context.Background())
		first <- index
	}()
	<-q.started // round 1 is in flight

	const late = 64
	results := make(chan uint64, late)
	for range late {
		go func() {
			index, err := b.do(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- index
		}()
	}
	waitFor(t, eventually, "late callers to queue", func() bool { return queuedCallers(b) == late })

	q.release <- struct{}{}
	if got := <-first; got != 1 {
		t.Fatalf("first caller got round %d, want 1", got)
	}
	if got := <-q.started; got != 2 {
		t.Fatalf("next round is %d, want 2", got)
	}
	q.release <- struct{}{}
	for range late {
		// Round 1 began before they arrived, so its answer would be stale for them.
		if got := <-results; got != 2 {
			t.Fatalf("late caller got round %d, want 2", got)
		}
	}
	if q.rounds != 2 {
		t.Fatalf("%d rounds for %d callers, want 2", q.rounds, late+1)
	}
}

func TestRoundBatcherImpatientCallerDoesNotFailOthers(t *testing.T) {
	q := newSteppedQuery()
	b := newRoundBatcher(context.Background(), time.Minute, q.query)
	defer b.close()

	ctx, cancel := context.WithCancel(context.Background())
	impatient := make(chan error, 1)
	go func() {
		_, err := b.do(ctx)
		impatient <- err
	}()
	<-q.started
	patient := make(chan uint64, 1)
	go func() {
		index, _ := b.do(context.Background())
		patient <- index
	}()
	waitFor(t, eventually, "second caller to queue", func() bool { return queuedCallers(b) == 1 })

	cancel()
	if err := <-impatient; !errors.Is(err, context.Canceled) {
		t.Fatalf("impatient caller: got %v, want context.Canceled", err)
	}
	q.release <- struct{}{}
	<-q.started
	q.release <- struct{}{}
	if got := <-patient; got != 2 {
		t.Fatalf("patient caller got round %d, want 2", got)
	}
}

func TestRoundBatcherRefusesCallersAfterClose(t *testing.T) {
	b := newRoundBatcher(context.Background(), time.Minute, func(context.Context) (uint64, error) { return 1, nil })
	b.close()
	if _, err := b.do(context.Background()); !errors.Is(err, ErrShutdown) {
		t.Fatalf("got %v, want ErrShutdown", err)
	}
}

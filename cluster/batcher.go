package cluster

import (
	"context"
	"sync"
	"time"
)

// roundBatcher coalesces concurrent callers of an expensive query into rounds: at most one round
// runs at a time, and every caller that arrives while it runs joins the next one. A caller
// therefore always gets a result computed entirely after its arrival (which linearizable reads
// require), and N concurrent callers cost about two rounds, not N.
type roundBatcher struct {
	query    func(ctx context.Context) (uint64, error)
	lifetime context.Context
	timeout  time.Duration

	mu      sync.Mutex
	running bool
	closed  bool
	next    *round
	loops   sync.WaitGroup
}

type round struct {
	done    chan struct{}
	callers int // guarded by roundBatcher.mu; how many callers one query serves
	index   uint64
	err     error
}

func newRoundBatcher(lifetime context.Context, timeout time.Duration, query func(context.Context) (uint64, error)) *roundBatcher {
	return &roundBatcher{query: query, lifetime: lifetime, timeout: timeout}
}

// do joins the next round and waits for its result or for ctx. A round's own deadline is the
// batcher's timeout, not any caller's: one impatient caller must not fail the others.
func (b *roundBatcher) do(ctx context.Context) (uint64, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return 0, ErrShutdown
	}
	if b.next == nil {
		b.next = &round{done: make(chan struct{})}
	}
	r := b.next
	r.callers++
	if !b.running {
		b.running, b.next = true, nil
		b.loops.Add(1)
		go b.run(r)
	}
	b.mu.Unlock()

	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run executes rounds back to back while callers keep queueing for the next one.
func (b *roundBatcher) run(r *round) {
	defer b.loops.Done()
	for r != nil {
		ctx, cancel := context.WithTimeout(b.lifetime, b.timeout)
		r.index, r.err = b.query(ctx)
		cancel()
		close(r.done)

		b.mu.Lock()
		r, b.next = b.next, nil
		b.running = r != nil
		b.mu.Unlock()
	}
}

// close refuses new callers and waits for running rounds, which end quickly once the lifetime
// context is cancelled.
func (b *roundBatcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.loops.Wait()
}

package cluster

import "sync"

// commitNudger makes the leader tell its followers the commit index now, instead of at the next
// CommitTimeout. hashicorp/raft sends a follower the commit index only with an append; when writes
// stop, the next one comes after CommitTimeout. A follower read that needs a write it has not
// applied yet (read-after-write through another node, or through itself after forwarding) asks
// for a nudge, and the leader appends a barrier, whose append carries the current commit index to
// every follower. One barrier runs at a time; requests made while it runs get one more after it,
// since its append may have left before their write committed.
type commitNudger struct {
	barrier func() error

	mu      sync.Mutex
	running bool
	again   bool
	closed  bool
	loops   sync.WaitGroup
}

func newCommitNudger(barrier func() error) *commitNudger {
	return &commitNudger{barrier: barrier}
}

// request asks for a barrier after the present commit index; it does not wait for it.
func (c *commitNudger) request() {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case c.running:
		c.again = true
	default:
		c.running = true
		c.loops.Add(1)
		go c.run()
	}
}

func (c *commitNudger) run() {
	defer c.loops.Done()
	for {
		// A failed barrier (leadership lost, shutdown) leaves the follower to learn the commit
		// index from the next leader's appends; nothing here can do better.
		_ = c.barrier()
		c.mu.Lock()
		if !c.again || c.closed {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.again = false
		c.mu.Unlock()
	}
}

// close refuses further requests and waits for a running barrier, which ends once Raft has shut
// down.
func (c *commitNudger) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.loops.Wait()
}

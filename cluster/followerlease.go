package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Follower read leases (DESIGN.md, "Follower read leases"). A follower that fetched a read index
// with a lease serves reads from its own state until the lease ends, without asking the leader;
// the leader, in turn, acknowledges no write before every follower holding one of its leases has
// applied it or that lease has ended.

// ReadIndexReply is a leader's answer to a follower's read-index fetch.
type ReadIndexReply struct {
	Index uint64
	// LeaseTerm, when not zero, grants the asking follower a read lease in that term.
	LeaseTerm uint64
}

// AppliedWaiter asks region member nodeID to answer once it has applied index, and returns the
// index it has applied; transport implements it as an RPC. The leader calls it, before
// acknowledging a write, for every follower that holds a read lease.
type AppliedWaiter func(ctx context.Context, nodeID string, index uint64) (uint64, error)

// SetAppliedWaiter installs the leader's way of asking a follower how far it has applied. Until it
// is set, a leader grants no follower leases.
func (n *Node) SetAppliedWaiter(w AppliedWaiter) { n.appliedWaiter.Store(&w) }

func (n *Node) loadAppliedWaiter() AppliedWaiter {
	if w := n.appliedWaiter.Load(); w != nil {
		return *w
	}
	return nil
}

// WaitApplied returns once this node's state machine has applied index, with the index applied
// then. It is the follower side of the leader's wait for leased followers.
func (n *Node) WaitApplied(ctx context.Context, index uint64) (uint64, error) {
	if n.isShutdown() {
		return 0, ErrShutdown
	}
	if err := n.sm.WaitApplied(ctx, index); err != nil {
		return 0, fmt.Errorf("wait applied %d: %w", index, err)
	}
	return n.sm.AppliedIndex(), nil
}

// heldLease is the follower's side: a read index it may serve from, granted by leader in term,
// usable until until (its own clock, counted from when it sent the request).
type heldLease struct {
	mu     sync.Mutex
	term   uint64
	leader string
	index  uint64
	until  time.Time

	renewing atomic.Bool // one reader at a time renews a lease that is running out
}

func (l *heldLease) set(term uint64, leader string, index uint64, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if term < l.term || (term == l.term && leader == l.leader && !until.After(l.until)) {
		return // an older grant answered late
	}
	l.term, l.leader, l.index, l.until = term, leader, index, until
}

// usable returns the lease's read index when the lease was granted by leader in term and has not
// ended at now; renew is true once less than half of it is left.
func (l *heldLease) usable(term uint64, leader string, now time.Time, length time.Duration) (index uint64, ok, renew bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term == 0 || l.term != term || l.leader != leader || leader == "" || !now.Before(l.until) {
		return 0, false, false
	}
	return l.index, true, l.until.Sub(now) < length/2
}

// leaseGrants is the leader's side: the followers it granted leases in term, and how far each
// is known to have applied.
type leaseGrants struct {
	mu        sync.Mutex
	term      uint64
	followers map[string]*leasedFollower
	// benched holds, across terms, the followers that held up a write for longer than a lease,
	// with when they may have a lease again.
	benched map[string]time.Time
	closed  bool           // set by Shutdown; no chaser starts after it
	chasers sync.WaitGroup // chaseFollower goroutines
}

// close stops new chasers and waits for the running ones, which end with the node's lifetime.
func (g *leaseGrants) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.chasers.Wait()
}

type leasedFollower struct {
	// expiry is when the follower's lease has surely ended, on the leader's clock: twice the
	// follower's lease length from when the leader recorded the grant, which is after the
	// follower sent its request, so a follower clock running up to twice as slow is covered.
	expiry    time.Time
	confirmed uint64    // highest index the follower reported applied
	chasing   bool      // a goroutine is asking the follower for the last of waits
	changed   broadcast // notified when confirmed grows
	// waits are the unconfirmed indexes writes wait for, in increasing order, each with when
	// the first write waiting for it (or a higher one) began to: waits[0] is the oldest wait,
	// the last one the index to ask the follower for.
	waits []pendingWait
}

type pendingWait struct {
	index uint64
	since time.Time
}

// noteWait records that a write began at now to wait for index.
func (f *leasedFollower) noteWait(index uint64, now time.Time) {
	if n := len(f.waits); n == 0 || f.waits[n-1].index < index {
		f.waits = append(f.waits, pendingWait{index, now})
	}
}

// confirm records that the follower has applied index.
func (f *leasedFollower) confirm(index uint64) {
	if index <= f.confirmed {
		return
	}
	f.confirmed = index
	i := 0
	for i < len(f.waits) && f.waits[i].index <= index {
		i++
	}
	f.waits = f.waits[i:]
	f.changed.notify()
}

// oldestWait is how long the oldest write still waiting for the follower has waited at now.
func (f *leasedFollower) oldestWait(now time.Time) time.Duration {
	if len(f.waits) == 0 {
		return 0
	}
	return now.Sub(f.waits[0].since)
}

// record notes a lease for follower in term before the read index it comes with is computed: a
// write acknowledged after this sees the lease, and one acknowledged before has an index at or
// below that read index.
func (g *leaseGrants) record(term uint64, follower string, expiry time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.term != term {
		g.term, g.followers = term, map[string]*leasedFollower{}
	}
	f := g.followers[follower]
	if f == nil {
		f = &leasedFollower{}
		g.followers[follower] = f
	}
	if expiry.After(f.expiry) {
		f.expiry = expiry
	}
}

// grantFollowerLease records a lease for follower, which has applied up to followerApplied,
// when leases are on, it is a member of the region and it is not far behind; it returns the term
// of the grant, or 0 for none. A lagging follower fetches for every read until it has caught up:
// with a lease, every write would wait for it to apply everything before.
func (n *Node) grantFollowerLease(follower string, followerApplied uint64) uint64 {
	if n.cfg.followerLease == 0 || follower == "" || follower == n.cfg.NodeID || n.loadAppliedWaiter() == nil {
		return 0
	}
	if followerApplied+n.cfg.followerLeaseMaxLag < n.sm.AppliedIndex() {
		return 0
	}
	if !n.IsLeader() || n.refuseSlow(follower, time.Now()) {
		return 0
	}
	term := n.raft.CurrentTerm()
	conf, _, err := n.configuration()
	if err != nil {
		return 0
	}
	for _, s := range conf.Servers {
		if string(s.ID) == follower {
			n.grants.record(term, follower, time.Now().Add(2*n.cfg.followerLease))
			return term
		}
	}
	return 0
}

// waitLeasedFollowers returns once every follower holding a lease has applied index, or that
// lease has ended. A write is acknowledged only after this, so no leased follower serves a read
// that misses it. Only the leases held now count: index is committed, so a lease granted or
// renewed later comes with a read index at or above it, and the follower serves nothing older
// under it.
func (n *Node) waitLeasedFollowers(ctx context.Context, index uint64) error {
	g := &n.grants
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ErrShutdown
	}
	now := time.Now()
	type pendingFollower struct {
		f      *leasedFollower
		expiry time.Time
	}
	var pending []pendingFollower
	for id, f := range g.followers {
		if !now.Before(f.expiry) {
			if !f.chasing {
				delete(g.followers, id)
			}
			continue
		}
		if f.confirmed >= index {
			continue
		}
		f.noteWait(index, now)
		if !f.chasing {
			f.chasing = true
			g.chasers.Add(1)
			go n.chaseFollower(id, f)
		}
		pending = append(pending, pendingFollower{f, f.expiry})
	}
	g.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	// The follower learns that index committed with the leader's next append; without a write
	// behind this one that would be CommitTimeout away.
	n.nudger.request()
	for _, p := range pending {
		if err := g.awaitFollower(ctx, p.f, index, p.expiry); err != nil {
			return err
		}
	}
	return nil
}

// benchIfSlow benches follower f when a write has waited on it for longer than a lease length,
// and reports whether it was not benched yet; g.mu is held. A benched follower gets no lease for
// followerLeaseCooldown and fetches for every read meanwhile: while it is that slow the writes
// would wait for it, where Raft alone needs only the majority. Refusing a lease never needs a
// wait; the lease it holds runs out as any other.
func (n *Node) benchIfSlow(id string, f *leasedFollower, now time.Time) (newly bool) {
	if f == nil || n.cfg.followerLeaseCooldown < 0 || f.oldestWait(now) <= n.cfg.followerLease {
		return false
	}
	g := &n.grants
	if g.benched == nil {
		g.benched = map[string]time.Time{}
	}
	was := g.benched[id]
	if until := now.Add(n.cfg.followerLeaseCooldown); until.After(was) {
		g.benched[id] = until
	}
	return !now.Before(was)
}

// refuseSlow reports whether follower is benched, benching it first if a write has waited on it
// for too long already.
func (n *Node) refuseSlow(follower string, now time.Time) bool {
	g := &n.grants
	g.mu.Lock()
	newly := n.benchIfSlow(follower, g.followers[follower], now)
	until, benched := g.benched[follower]
	if benched && !now.Before(until) {
		delete(g.benched, follower)
		benched = false
	}
	g.mu.Unlock()
	if newly {
		n.logBenched(follower)
	}
	return benched
}

func (n *Node) logBenched(follower string) {
	n.cfg.Logger.Info("follower slow to apply writes; no read lease for it for a while",
		"follower", follower, "for", n.cfg.followerLeaseCooldown)
}

// awaitFollower waits until f has confirmed index or expiry, the end of the lease it held when
// the write began to wait, has passed.
func (g *leaseGrants) awaitFollower(ctx context.Context, f *leasedFollower, index uint64, expiry time.Time) error {
	for {
		g.mu.Lock()
		changed := f.changed.wait()
		done := f.confirmed >= index || !time.Now().Before(expiry)
		g.mu.Unlock()
		if done {
			return nil
		}
		timer := time.NewTimer(time.Until(expiry))
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("wait for leased followers: %w", ctx.Err())
		}
		timer.Stop()
	}
}

// chaseFollower asks follower id, one call at a time, to confirm the highest index a write waits
// for, until no write waits or its lease has ended, and benches it if it is slow.
func (n *Node) chaseFollower(id string, f *leasedFollower) {
	g := &n.grants
	defer g.chasers.Done()
	const retryPause = 5 * time.Millisecond
	for {
		g.mu.Lock()
		expiry := f.expiry
		now := time.Now()
		if n.lifetime.Err() != nil {
			f.chasing = false
			g.mu.Unlock()
			return
		}
		newly := n.benchIfSlow(id, f, now)
		if len(f.waits) == 0 || !now.Before(expiry) {
			f.chasing = false
			f.waits = nil // nothing waits for it any more: the writes stopped waiting at expiry
			g.mu.Unlock()
			if newly {
				n.logBenched(id)
			}
			return
		}
		want := f.waits[len(f.waits)-1].index
		g.mu.Unlock()
		if newly {
			n.logBenched(id)
		}

		wait := n.loadAppliedWaiter()
		ctx, cancel := context.WithDeadline(n.lifetime, expiry)
		applied, err := wait(ctx, id, want)
		cancel()
		if err == nil {
			g.mu.Lock()
			f.confirm(applied)
			g.mu.Unlock()
			continue
		}
		select {
		case <-time.After(retryPause):
		case <-n.lifetime.Done():
		}
	}
}

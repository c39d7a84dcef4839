package cluster

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadsNeverMissAReturnedWriteUnderPartitions checks the promise read leases must keep, with
// leases held, renewed, cut off and moved between leaders: a read that starts after a write
// returned sees that write (or a later one), on every node. A writer counts up one key through
// whichever node leads; a reader per node reads it. Faults alternate: the leader and one follower
// split off together (the majority elects a new leader and writes on, while the follower still
// holds a lease the old leader granted), then one node cut off alone.
func TestReadsNeverMissAReturnedWriteUnderPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	// Followers learn of commits late (CommitTimeout 100ms) unless the leader nudges them: a
	// follower serving under a lease it should not hold then lags far enough to be caught.
	c := newTestCluster(t, func(cfg *Config) { cfg.CommitTimeout = 100 * time.Millisecond })
	nodes := c.bootstrap(5, false)
	c.waitLeader(nodes...)

	const runFor = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()

	var (
		acked    atomic.Int64 // highest value whose write returned
		writes   atomic.Int64
		reads    atomic.Int64
		leaders  atomic.Int64 // leadership changes the writer saw
		violated atomic.Bool
		wg       sync.WaitGroup
	)
	wg.Go(func() {
		next := int64(1)
		lastLeader := ""
		poll := time.NewTicker(pollEvery)
		defer poll.Stop()
		for ctx.Err() == nil {
			led := false
			for _, n := range nodes {
				if !n.IsLeader() {
					continue
				}
				led = true
				if n.id != lastLeader {
					lastLeader = n.id
					leaders.Add(1)
				}
				wctx, wcancel := context.WithTimeout(ctx, time.Second)
				_, err := n.Apply(wctx, kvCommand("k", strconv.FormatInt(next, 10)))
				wcancel()
				if err == nil {
					acked.Store(next)
					writes.Add(1)
				}
				next++ // a failed write may still apply later: values only grow either way
			}
			if !led {
				select { // no leader during an election: poll for the next one
				case <-poll.C:
				case <-ctx.Done():
				}
			}
		}
	})
	for _, n := range nodes {
		wg.Go(func() {
			for ctx.Err() == nil {
				before := acked.Load()
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				err := n.ReadBarrier(rctx)
				rcancel()
				if err != nil {
					continue
				}
				got, _ := n.sm.Get("k")
				v, _ := strconv.ParseInt(got, 10, 64)
				if v < before {
					violated.Store(true)
					t.Errorf("%s read k=%d after the write of %d had returned", n.id, v, before)
					return
				}
				reads.Add(1)
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cuts := 0
	for round := 0; ctx.Err() == nil && !violated.Load(); round++ {
		var heal func()
		if leader := leaderOf(nodes); round%2 == 0 && leader != nil {
			followers := others(nodes, leader)
			c.split(leader, followers[rng.IntN(len(followers))])
			heal = c.unsplit
			wait(ctx, time.Duration(700+rng.IntN(300))*time.Millisecond)
		} else {
			victim := nodes[rng.IntN(len(nodes))]
			c.partition(victim)
			heal = func() { c.heal(victim) }
			wait(ctx, time.Duration(100+rng.IntN(400))*time.Millisecond)
		}
		cuts++
		heal()
		wait(ctx, time.Duration(50+rng.IntN(300))*time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d partitions, %d leaders, %d writes returned, %d reads checked", cuts, leaders.Load(), writes.Load(), reads.Load())
	if writes.Load() == 0 || reads.Load() == 0 {
		t.Fatalf("nothing was checked: %d writes, %d reads", writes.Load(), reads.Load())
	}
	for _, n := range nodes {
		waitFor(t, eventually, n.id+" to serve again after the last heal", barrierSucceeds(n))
	}
}

func leaderOf(nodes []*testNode) *testNode {
	for _, n := range nodes {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

// wait holds a fault for d (a schedule, not a wait for a condition).
func wait(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

package cluster

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func TestReadBarrierSeesPriorWrites(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	readers := append(others(nodes, leader), leader)

	for i := range 200 {
		value := strconv.Itoa(i)
		mustApply(t, leader, "counter", value)
		reader := readers[i%len(readers)]
		if err := reader.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatalf("iteration %d: read barrier on %s: %v", i, reader.id, err)
		}
		if got, _ := reader.sm.Get("counter"); got != value {
			t.Fatalf("iteration %d: %s read counter=%s after the barrier, want %s", i, reader.id, got, value)
		}
	}
}

func TestReadBarrierRightAfterElectionWithoutWrites(t *testing.T) {
	// The last entries are then the new leader's no-op and barrier, which the state machine never
	// sees: the barrier must not wait for them.
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	mustApply(t, leader, "a", "1")
	c.stop(leader)
	survivors := others(nodes, leader)
	c.waitLeader(survivors...)
	for _, n := range survivors {
		if err := n.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatalf("read barrier on %s: %v", n.id, err)
		}
		if got, _ := n.sm.Get("a"); got != "1" {
			t.Fatalf("%s read a=%q", n.id, got)
		}
	}
}

func TestConcurrentFollowerReadBarriersShareFetches(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	follower := others(nodes, leader)[0]
	mustApply(t, leader, "a", "1")

	var fetches atomic.Int64
	follower.SetReadIndexFetcher(func(ctx context.Context, leaderID string) (uint64, error) {
		fetches.Add(1)
		return c.fetcher(follower.id)(ctx, leaderID)
	})
	const callers = 64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			if err := follower.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d concurrent read barriers cost %d fetches", callers, fetches.Load())
	if fetches.Load() > callers/4 {
		t.Fatalf("%d fetches for %d concurrent read barriers: not batched", fetches.Load(), callers)
	}
}

package cluster

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
	follower.SetReadIndexFetcher(func(ctx context.Context, leaderID string, applied uint64) (ReadIndexReply, error) {
		fetches.Add(1)
		return c.fetcher(follower.id)(ctx, leaderID, applied)
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

func TestFollowerReadAfterWriteDoesNotWaitForCommitTimeout(t *testing.T) {
	// With writes stopped, hashicorp/raft tells a follower the commit index only after
	// CommitTimeout. Here that is an hour: each barrier below returns within opTimeout only if
	// the leader sends the commit index when a follower's read needs it (ServeReadIndex).
	c := newTestCluster(t, func(cfg *Config) { cfg.CommitTimeout = time.Hour })
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	followers := others(nodes, leader)
	for i := range 20 {
		value := strconv.Itoa(i)
		mustApply(t, leader, "k", value)
		reader := followers[i%len(followers)]
		if err := reader.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatalf("write %d: read barrier on %s: %v", i, reader.id, err)
		}
		if got, _ := reader.sm.Get("k"); got != value {
			t.Fatalf("write %d: %s read k=%q after the barrier, want %q", i, reader.id, got, value)
		}
	}
}

package cluster

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestHeldLeaseIsUsableOnlyInItsTermFromItsLeaderUntilItEnds(t *testing.T) {
	const length = 100 * time.Millisecond
	now := time.Now()
	var l heldLease
	if _, ok, _ := l.usable(0, "", now, length); ok {
		t.Fatal("an empty lease is usable")
	}
	l.set(3, "a", 10, now.Add(length))
	cases := []struct {
		name      string
		term      uint64
		leader    string
		at        time.Time
		ok, renew bool
	}{
		{"granting leader, same term", 3, "a", now, true, false},
		{"less than half left", 3, "a", now.Add(length * 3 / 4), true, true},
		{"ended", 3, "a", now.Add(length), false, false},
		{"later term", 4, "a", now, false, false},
		{"other leader", 3, "b", now, false, false},
		{"no leader known", 3, "", now, false, false},
	}
	for _, tc := range cases {
		index, ok, renew := l.usable(tc.term, tc.leader, tc.at, length)
		if ok != tc.ok || renew != tc.renew || (ok && index != 10) {
			t.Errorf("%s: usable = (%d, %v, %v), want ok=%v renew=%v", tc.name, index, ok, renew, tc.ok, tc.renew)
		}
	}

	l.set(3, "a", 9, now.Add(length/2)) // an older grant answered late
	if index, ok, _ := l.usable(3, "a", now.Add(length*3/4), length); !ok || index != 10 {
		t.Fatalf("a late, shorter grant replaced the lease: (%d, %v)", index, ok)
	}
}

// countFetches makes follower count its read-index fetches.
func countFetches(c *testCluster, follower *testNode) *atomic.Int64 {
	var fetches atomic.Int64
	follower.SetReadIndexFetcher(func(ctx context.Context, leaderID string, applied uint64) (ReadIndexReply, error) {
		fetches.Add(1)
		return c.fetcher(follower.id)(ctx, leaderID, applied)
	})
	return &fetches
}

func TestFollowerReadsUnderALeaseAskTheLeaderOnlyToRenewIt(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run("StrictReads="+strconv.FormatBool(strict), func(t *testing.T) {
			c := newTestCluster(t, func(cfg *Config) {
				cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second // a 500ms lease: the reads below fit in one
				cfg.StrictReads = strict
			})
			nodes := c.bootstrap(3, true)
			leader := c.waitLeader(nodes...)
			follower := others(nodes, leader)[0]
			mustApply(t, leader, "a", "1")
			fetches := countFetches(c, follower)

			const reads = 50
			for range reads {
				if err := follower.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
					t.Fatal(err)
				}
				if got, _ := follower.sm.Get("a"); got != "1" {
					t.Fatalf("follower read a=%q after the barrier", got)
				}
			}
			got := fetches.Load()
			t.Logf("%d sequential follower reads cost %d fetches", reads, got)
			if strict && got != reads {
				t.Fatalf("StrictReads: %d fetches for %d reads, want one each", got, reads)
			}
			if !strict && got > 3 {
				t.Fatalf("%d fetches for %d reads inside one lease", got, reads)
			}
		})
	}
}

func TestWriteReturnsOnlyOnceLeasedFollowersApplyIt(t *testing.T) {
	// With CommitTimeout an hour, a follower learns that a write committed only when the leader
	// sends it on purpose: a follower holding a lease has the write at once only because the
	// leader waited for it.
	c := newTestCluster(t, func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second
		cfg.CommitTimeout = time.Hour
	})
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	followers := others(nodes, leader)
	leased := 0
	for i := range 20 {
		for _, f := range followers {
			if err := f.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
				t.Fatalf("read barrier on %s: %v", f.id, err)
			}
		}
		value := strconv.Itoa(i)
		mustApply(t, leader, "k", value)
		returned := time.Now()
		for _, f := range followers {
			leaderID, _ := f.Leader()
			if _, ok, _ := f.lease.usable(f.raft.CurrentTerm(), leaderID, returned, f.cfg.followerLease); !ok {
				continue // the lease ran out first: the follower will fetch before its next read
			}
			leased++
			if got, _ := f.sm.Get("k"); got != value {
				t.Fatalf("write %d returned while %s held a lease and had k=%q: a read there would miss it", i, f.id, got)
			}
		}
	}
	if leased == 0 {
		t.Fatal("no follower held a lease when a write returned: the test checked nothing")
	}
	t.Logf("%d of %d follower checks were made under a lease", leased, 20*len(followers))
}

func TestPartitionedLeasedFollowerHoldsWritesNoLongerThanItsLease(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, false)
	leader := c.waitLeader(nodes...)
	isolated := others(nodes, leader)[0]
	mustApply(t, leader, "x", "1")
	if err := isolated.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
		t.Fatal(err)
	}

	c.partition(isolated)
	mustApply(t, leader, "x", "2") // waits for the isolated follower's lease to end, then returns
	// Whatever the isolated follower still serves must include x=2; it cannot, so it must refuse.
	if err := isolated.ReadBarrier(ctxWithTimeout(t, opTimeout)); err == nil {
		got, _ := isolated.sm.Get("x")
		t.Fatalf("the cut-off follower served a read after the write returned (x=%q)", got)
	}
	start := time.Now()
	mustApply(t, leader, "x", "3") // the lease has ended: no wait now
	if waited := time.Since(start); waited > opTimeout/2 {
		t.Fatalf("a write after the lease ended took %v", waited)
	}

	c.heal(isolated)
	waitFor(t, eventually, "the healed follower to serve", barrierSucceeds(isolated))
	if got, _ := isolated.sm.Get("x"); got != "3" {
		t.Fatalf("healed follower read x=%s, want 3", got)
	}
}

// A follower that held a write up for longer than a lease (here: cut off) gets no lease for a
// while once it is back, so the writes in that time need only the majority; it serves its reads
// by fetching the read index, and gets leases again after the cooldown.
func TestFollowerThatHeldUpAWriteGetsNoLeaseForAWhile(t *testing.T) {
	const cooldown = 3 * time.Second
	// Long leases (500 ms): the write must start waiting well within the lease the read took,
	// however loaded the machine, for it to wait on the follower for more than a lease length.
	c := newTestCluster(t, func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second
		cfg.followerLeaseCooldown = cooldown
	})
	nodes := c.bootstrap(3, false)
	leader := c.waitLeader(nodes...)
	slow := others(nodes, leader)[0]
	mustApply(t, leader, "x", "1")
	if err := slow.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
		t.Fatal(err)
	}

	c.partition(slow)
	last := mustApply(t, leader, "x", "2") // held up until the cut-off follower's lease ends
	benched := time.Now()
	c.heal(slow)
	waitFor(t, eventually, "the healed follower to serve x=2", func() bool {
		if slow.ReadBarrier(ctxWithTimeout(t, opTimeout)) != nil {
			return false
		}
		got, _ := slow.sm.Get("x")
		return got == "2"
	})
	reply, err := leader.ServeReadIndex(ctxWithTimeout(t, opTimeout), slow.id, last)
	if err != nil {
		t.Fatal(err)
	}
	if reply.LeaseTerm != 0 && time.Since(benched) < cooldown {
		t.Fatalf("the follower that held up a write got a lease again %v later (cooldown %v)", time.Since(benched), cooldown)
	}
	waitFor(t, eventually, "the follower to get leases again after the cooldown", func() bool {
		reply, err := leader.ServeReadIndex(ctxWithTimeout(t, opTimeout), slow.id, last)
		return err == nil && reply.LeaseTerm != 0
	})
}

// A follower that stays connected and keeps reading, but is too slow to confirm a write, must not
// keep the write waiting by renewing its lease. Two rules see to it, each enough alone: a write
// waits only for the leases held when it began to wait (a renewal comes with a read index at or
// above the write's), and a follower a write has waited on for a lease length is refused the
// renewal (benched). Benching off: the write still returns. Benching on: no lease afterwards.
func TestSlowFollowerThatKeepsRenewingDoesNotHoldWritesForever(t *testing.T) {
	for _, benching := range []bool{false, true} {
		t.Run("benching="+strconv.FormatBool(benching), func(t *testing.T) {
			c := newTestCluster(t, func(cfg *Config) {
				if !benching {
					cfg.followerLeaseCooldown = -1
				}
			})
			nodes := c.bootstrap(3, false)
			leader := c.waitLeader(nodes...)
			slow := others(nodes, leader)[0]
			mustApply(t, leader, "x", "1")

			reading, stop := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(reading)
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
					_ = slow.ReadBarrier(ctx) // renews the lease while it has one, or fetches
					cancel()
				}
			}()
			defer func() { close(stop); <-reading }()
			waitFor(t, eventually, "the slow follower to hold a lease", func() bool {
				leaderID, _ := slow.Leader()
				_, ok, _ := slow.lease.usable(slow.raft.CurrentTerm(), leaderID, time.Now(), slow.cfg.followerLease)
				return ok
			})

			c.setSlow(slow, true)
			defer c.setSlow(slow, false)
			// Under neither rule, the reads above renew the lease for ever and the write times
			// out waiting for a confirmation that never comes.
			mustApply(t, leader, "x", "2")
			if !benching {
				return
			}
			reply, err := leader.ServeReadIndex(ctxWithTimeout(t, opTimeout), slow.id, 0)
			if err != nil {
				t.Fatal(err)
			}
			if reply.LeaseTerm != 0 {
				t.Fatal("the follower that held a write up got a lease again at once")
			}
		})
	}
}

func TestFollowersServeUnderTheNextLeaderAfterFailover(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) { cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second })
	nodes := c.bootstrap(3, false)
	oldLeader := c.waitLeader(nodes...)
	followers := others(nodes, oldLeader)
	mustApply(t, oldLeader, "x", "1")
	for _, f := range followers {
		if err := f.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatal(err)
		}
	}

	c.stop(oldLeader)
	newLeader := c.waitLeader(followers...)
	mustApply(t, newLeader, "x", "2")
	for _, f := range followers {
		if err := f.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatalf("%s after failover: %v", f.id, err)
		}
		if got, _ := f.sm.Get("x"); got != "2" {
			t.Fatalf("%s read x=%s after the new leader's write returned, want 2", f.id, got)
		}
	}
}

func TestLaggingFollowerGetsNoLeaseUntilItCatchesUp(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) { cfg.followerLeaseMaxLag = 4 })
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	follower := others(nodes, leader)[0]
	var last uint64
	for i := range 6 {
		last = mustApply(t, leader, "k", strconv.Itoa(i))
	}
	ctx := ctxWithTimeout(t, opTimeout)
	behind, err := leader.ServeReadIndex(ctx, follower.id, last-5)
	if err != nil {
		t.Fatal(err)
	}
	if behind.LeaseTerm != 0 {
		t.Fatalf("a follower 5 entries behind (limit 4) got a lease in term %d", behind.LeaseTerm)
	}
	inStep, err := leader.ServeReadIndex(ctx, follower.id, last)
	if err != nil {
		t.Fatal(err)
	}
	if inStep.LeaseTerm == 0 || inStep.Index < last {
		t.Fatalf("a follower in step got %+v, want a lease and an index of at least %d", inStep, last)
	}
	stranger, err := leader.ServeReadIndex(ctx, "not-a-member", last)
	if err != nil {
		t.Fatal(err)
	}
	if stranger.LeaseTerm != 0 {
		t.Fatal("a node outside the configuration got a lease")
	}
}

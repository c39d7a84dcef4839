package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Fault injection runs over raft.InmemTransport, whose links a test can cut, with the same
// on-disk stores as the TCP tests.

// barrierSucceeds retries ReadBarrier until it passes: after a heal, the node needs a moment to
// hear from the leader again.
func barrierSucceeds(n *testNode) func() bool {
	return func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return n.ReadBarrier(ctx) == nil
	}
}

// assertStopsServing checks that n refuses reads within a few seconds of being cut off. Not
// instantly: raft's VerifyLeader also counts acknowledgements of appends sent just before the
// partition, which prove leadership as of a moment ago.
func assertStopsServing(t *testing.T, n *testNode) {
	t.Helper()
	waitFor(t, 3*time.Second, "partitioned "+n.id+" to refuse reads", func() bool {
		err := n.ReadBarrier(ctxWithTimeout(t, opTimeout))
		if err != nil && !errors.Is(err, ErrNoLeader) {
			t.Fatalf("read barrier on partitioned %s: got %v, want ErrNoLeader", n.id, err)
		}
		return err != nil
	})
}

func TestPartitionedFollowerStopsServingUntilHealed(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, false)
	leader := c.waitLeader(nodes...)
	isolated, peer := others(nodes, leader)[0], others(nodes, leader)[1]
	mustApply(t, leader, "x", "1")
	waitValue(t, nodes, "x", "1")

	c.partition(isolated)
	assertStopsServing(t, isolated) // still believes in the leader, but cannot reach it
	waitFor(t, eventually, "the isolated follower to forget the leader", func() bool {
		id, _ := isolated.Leader()
		return id == ""
	})
	assertStopsServing(t, isolated)

	mustApply(t, leader, "x", "2")
	for _, n := range []*testNode{leader, peer} {
		if err := n.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatalf("majority node %s: %v", n.id, err)
		}
		if got, _ := n.sm.Get("x"); got != "2" {
			t.Fatalf("majority node %s read x=%s", n.id, got)
		}
	}

	c.heal(isolated)
	waitFor(t, eventually, "the healed follower to serve", barrierSucceeds(isolated))
	if got, _ := isolated.sm.Get("x"); got != "2" {
		t.Fatalf("healed follower read x=%s, want 2", got)
	}
}

func TestPartitionedLeaderStopsServingUntilHealed(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, false)
	oldLeader := c.waitLeader(nodes...)
	majority := others(nodes, oldLeader)
	mustApply(t, oldLeader, "x", "1")
	if err := oldLeader.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
		t.Fatal(err)
	}

	c.partition(oldLeader)
	// VerifyLeader cannot reach a quorum, so the old leader refuses even while it still thinks
	// it leads.
	assertStopsServing(t, oldLeader)
	if _, err := oldLeader.Apply(ctxWithTimeout(t, 2*time.Second), kvCommand("stale", "write")); err == nil {
		t.Fatal("an isolated leader acknowledged a write")
	}

	newLeader := c.waitLeader(majority...)
	mustApply(t, newLeader, "x", "2")
	for _, n := range majority {
		if err := n.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
			t.Fatalf("majority node %s: %v", n.id, err)
		}
		if got, _ := n.sm.Get("x"); got != "2" {
			t.Fatalf("majority node %s read x=%s", n.id, got)
		}
	}
	assertStopsServing(t, oldLeader)

	c.heal(oldLeader)
	waitFor(t, eventually, "the old leader to serve again", barrierSucceeds(oldLeader))
	if got, _ := oldLeader.sm.Get("x"); got != "2" {
		t.Fatalf("old leader read x=%s after healing, want 2", got)
	}
	for _, n := range nodes {
		if _, ok := n.sm.Get("stale"); ok {
			t.Fatalf("%s applied the write the isolated leader never committed", n.id)
		}
	}
}

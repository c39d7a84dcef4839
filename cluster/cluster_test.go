package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
)

func TestThreeNodesReplicateAndRefuseWritesOnFollowers(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)

	mustApply(t, leader, "color", "blue")
	waitValue(t, nodes, "color", "blue")

	for _, f := range others(nodes, leader) {
		_, err := f.Apply(ctxWithTimeout(t, opTimeout), kvCommand("color", "red"))
		var nle *NotLeaderError
		if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nle) {
			t.Fatalf("apply on follower %s: got %v, want a NotLeaderError", f.id, err)
		}
		if nle.LeaderID != leader.id || nle.LeaderAddr != leader.addr {
			t.Fatalf("NotLeaderError names %s at %s, want %s at %s", nle.LeaderID, nle.LeaderAddr, leader.id, leader.addr)
		}
	}

	servers, err := leader.Servers()
	if err != nil {
		t.Fatal(err)
	}
	leaders := 0
	for _, s := range servers {
		if s.Suffrage != Voter {
			t.Errorf("server %s is %v, want voter", s.ID, s.Suffrage)
		}
		if s.Leader {
			leaders++
		}
	}
	if len(servers) != 3 || leaders != 1 {
		t.Fatalf("servers = %+v, want 3 voters and one leader", servers)
	}
	if err := leader.Bootstrap(); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("second bootstrap: got %v, want ErrAlreadyBootstrapped", err)
	}
	if got := leader.Stats()["fsm_applied_index"]; got == "" || got == "0" {
		t.Fatalf("stats fsm_applied_index = %q", got)
	}
}

func TestLeaderFailoverKeepsAcknowledgedWrites(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)

	acked := applyConcurrently(t, leader, "before", 64)
	c.stop(leader)
	survivors := others(nodes, leader)
	newLeader := c.waitLeader(survivors...)
	acked = append(acked, applyConcurrently(t, newLeader, "after", 64)...)

	for _, key := range acked {
		waitValue(t, survivors, key, testPayload)
	}
}

// applyConcurrently applies count keys from as many goroutines and returns the acknowledged ones.
func applyConcurrently(t *testing.T, n *testNode, prefix string, count int) []string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
	)
	for i := range count {
		wg.Go(func() {
			key := fmt.Sprintf("%s-%d", prefix, i)
			if _, err := n.Apply(ctxWithTimeout(t, opTimeout), kvCommand(key, testPayload)); err != nil {
				t.Errorf("apply %s: %v", key, err)
				return
			}
			mu.Lock()
			acked = append(acked, key)
			mu.Unlock()
		})
	}
	wg.Wait()
	return acked
}

func TestRestartAllFromDataDirs(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)

	for i := range 20 {
		mustApply(t, leader, "k"+strconv.Itoa(i), "before")
		if i == 9 {
			// Half the state comes back from a snapshot, half from replaying the log.
			if err := leader.TakeSnapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitValue(t, nodes, "k19", "before")

	for _, n := range nodes {
		c.stop(n)
	}
	restarted := make([]*testNode, len(nodes))
	for i, n := range nodes {
		restarted[i] = c.restart(n)
		if !restarted[i].HasState() {
			t.Fatalf("%s has no state after restart", n.id)
		}
		if err := restarted[i].Bootstrap(); !errors.Is(err, ErrAlreadyBootstrapped) {
			t.Fatalf("bootstrap after restart: got %v, want ErrAlreadyBootstrapped", err)
		}
	}
	leader = c.waitLeader(restarted...)
	for i := range 20 {
		waitValue(t, restarted, "k"+strconv.Itoa(i), "before")
	}
	mustApply(t, leader, "after", "restart")
	waitValue(t, restarted, "after", "restart")
}

func TestLaggingFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.TrailingLogs = 2
		cfg.SnapshotThreshold = 1 << 20 // snapshots only when asked
	})
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	lagging := others(nodes, leader)[0]
	c.stop(lagging)

	for i := range 50 {
		mustApply(t, leader, "k"+strconv.Itoa(i), testPayload)
	}
	if err := leader.TakeSnapshot(); err != nil {
		t.Fatal(err)
	}
	if first, _ := leader.logs.FirstIndex(); first <= lagging.CommitIndex() {
		t.Fatalf("log not compacted past the lagging node: first index %d", first)
	}

	back := c.restart(lagging)
	waitValue(t, []*testNode{back}, "k49", testPayload)
	if back.sm.Len() != 50 {
		t.Fatalf("caught-up node has %d keys, want 50", back.sm.Len())
	}
	// Raft records the installed snapshot just after the state machine has restored it.
	waitFor(t, eventually, "the lagging node to record an installed snapshot", func() bool {
		return back.Stats()["last_snapshot_index"] != "0"
	})
}

func TestRemoveServer(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	follower := others(nodes, leader)[0]
	ctx := ctxWithTimeout(t, opTimeout)

	if err := leader.RemoveServer(ctx, "nobody"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("remove unknown: got %v, want ErrUnknownServer", err)
	}
	if err := follower.RemoveServer(ctx, leader.id); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("remove on follower: got %v, want ErrNotLeader", err)
	}
	if err := leader.AddVoter(ctx, follower.id, follower.addr); err != nil {
		t.Fatalf("re-adding an existing voter: %v", err)
	}
	if err := leader.RemoveServer(ctx, follower.id); err != nil {
		t.Fatal(err)
	}
	servers, err := leader.Servers()
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 2 {
		t.Fatalf("servers after removal = %+v", servers)
	}
	for _, s := range servers {
		if s.ID == follower.id {
			t.Fatalf("%s still in configuration", follower.id)
		}
	}
	mustApply(t, leader, "after", "removal")
	waitValue(t, others(nodes, follower), "after", "removal")
}

func TestSingleNodeLifecycle(t *testing.T) {
	c := newTestCluster(t, nil)
	n := c.start("solo", t.TempDir(), "127.0.0.1:0")
	if n.HasState() {
		t.Fatal("fresh node reports state")
	}
	changes := n.LeadershipChanges()
	if leader := <-changes; leader {
		t.Fatal("leader before bootstrap")
	}
	if err := n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	if id, err := n.WaitForLeader(ctxWithTimeout(t, opTimeout)); err != nil || id != "solo" {
		t.Fatalf("WaitForLeader = %q, %v", id, err)
	}
	if leader := <-changes; !leader {
		t.Fatal("no leadership notification")
	}
	if late := <-n.LeadershipChanges(); !late {
		t.Fatal("a late subscriber does not see the current leadership")
	}

	mustApply(t, n, "a", "1")
	if err := n.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
		t.Fatal(err)
	}
	if err := n.AddNonvoter(ctxWithTimeout(t, opTimeout), "solo", n.addr); err != nil {
		t.Fatalf("AddNonvoter of an existing voter: %v", err)
	}
	if err := n.RemoveServer(ctxWithTimeout(t, opTimeout), "solo"); !errors.Is(err, ErrLastVoter) {
		t.Fatalf("removing the last voter: got %v, want ErrLastVoter", err)
	}

	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	if _, ok := <-changes; ok {
		t.Fatal("leadership channel still open after shutdown")
	}
	if _, err := n.Apply(context.Background(), kvCommand("b", "2")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("apply after shutdown: got %v, want ErrShutdown", err)
	}
	if err := n.ReadBarrier(context.Background()); !errors.Is(err, ErrShutdown) {
		t.Fatalf("read barrier after shutdown: got %v, want ErrShutdown", err)
	}
	if _, err := n.WaitForLeader(context.Background()); !errors.Is(err, ErrShutdown) {
		t.Fatalf("WaitForLeader after shutdown: got %v, want ErrShutdown", err)
	}
}

func TestRejoinAndNonvoters(t *testing.T) {
	c := newTestCluster(t, nil)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	ctx := ctxWithTimeout(t, opTimeout)

	// A node rebuilt from scratch comes back on its old address under a new id: the stale
	// entry holding that address is replaced rather than left to count towards the quorum.
	old := others(nodes, leader)[0]
	c.stop(old)
	rebuilt := c.start("n2-rebuilt", t.TempDir(), old.addr)
	if err := leader.AddVoter(ctx, rebuilt.id, rebuilt.addr); err != nil {
		t.Fatal(err)
	}
	observer := c.start("observer", t.TempDir(), "127.0.0.1:0")
	if err := leader.AddNonvoter(ctx, observer.id, observer.addr); err != nil {
		t.Fatal(err)
	}
	if err := leader.AddNonvoter(ctx, observer.id, observer.addr); err != nil {
		t.Fatalf("repeated AddNonvoter: %v", err)
	}

	servers, err := leader.Servers()
	if err != nil {
		t.Fatal(err)
	}
	suffrages := map[string]Suffrage{}
	for _, s := range servers {
		suffrages[s.ID] = s.Suffrage
	}
	if _, ok := suffrages[old.id]; ok || len(servers) != 4 || suffrages[rebuilt.id] != Voter || suffrages[observer.id] != Nonvoter {
		t.Fatalf("servers = %+v, want the rebuilt voter replacing %s plus a nonvoter", servers, old.id)
	}
	mustApply(t, leader, "seen", "by all")
	waitValue(t, []*testNode{rebuilt, observer}, "seen", "by all")
	if err := observer.ReadBarrier(ctxWithTimeout(t, opTimeout)); err != nil {
		t.Fatalf("read barrier on a nonvoter: %v", err)
	}
}

package membership

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trent-kms/trent/cluster"
)

func TestJoinThroughOneSeedSeesRegionWithMetadata(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	b := startNode(t, "b", "eu-1")
	c := startNode(t, "c", "eu-1", func(c *Config) { c.Role = cluster.Nonvoter })
	// Each joiner knows one seed only; gossip must bring in the rest.
	mustJoin(t, b.JoinLAN, a.LANAddr())
	mustJoin(t, c.JoinLAN, b.LANAddr())

	nodes := []*testNode{a, b, c}
	for _, n := range nodes {
		waitFor(t, waitTimeout, n.NodeID()+" to see the whole region", func() bool {
			return allAlive(n.LANMembers(), "a", "b", "c")
		})
	}
	for _, n := range nodes {
		for _, peer := range nodes {
			got, _ := memberByID(n.LANMembers(), peer.NodeID())
			want := Member{
				ID:         peer.NodeID(),
				Region:     "eu-1",
				Role:       peer.cfg.Role,
				GRPCAddr:   "127.0.0.1:1" + peer.NodeID(),
				RaftAddr:   "127.0.0.1:2" + peer.NodeID(),
				GossipAddr: peer.LANAddr(),
				WANAddr:    peer.WANAddr(),
				Status:     StatusAlive,
				LastChange: got.LastChange,
			}
			if got != want || got.LastChange.IsZero() {
				t.Errorf("%s sees %+v, want %+v", n.NodeID(), got, want)
			}
		}
		// Events are delivered after the table changes, from their own goroutine.
		waitFor(t, waitTimeout, n.NodeID()+"'s LAN join event for c", func() bool {
			return n.events.has(func(e Event) bool { return e.Type == EventJoin && e.Pool == LAN && e.Member.ID == "c" })
		})
	}
}

func TestWANReportsEachRegionsLeader(t *testing.T) {
	e1, e2 := startNode(t, "e1", "eu-1"), startNode(t, "e2", "eu-1")
	u1, u2 := startNode(t, "u1", "us-1"), startNode(t, "u2", "us-1")
	mustJoin(t, e2.JoinLAN, e1.LANAddr())
	mustJoin(t, u2.JoinLAN, u1.LANAddr())
	for _, n := range []*testNode{e2, u1, u2} {
		mustJoin(t, n.JoinWAN, e1.WANAddr())
	}
	if err := e1.SetLeader(true); err != nil {
		t.Fatal(err)
	}
	if err := u2.SetLeader(true); err != nil {
		t.Fatal(err)
	}

	var seen map[string]Member
	for _, n := range []*testNode{e1, e2, u1, u2} {
		waitFor(t, waitTimeout, n.NodeID()+" to see both regions' leaders", func() bool {
			seen = n.RegionLeaders()
			return len(seen) == 2 && seen["eu-1"].ID == "e1" && seen["us-1"].ID == "u2"
		})
		waitFor(t, waitTimeout, n.NodeID()+" to see four WAN members", func() bool {
			return allAlive(n.WANMembers(), "e1", "e2", "u1", "u2")
		})
		// The WAN pool must not leak other regions into the LAN pool.
		for _, m := range n.LANMembers() {
			if m.Region != n.Region() {
				t.Errorf("%s's LAN pool lists %s of %s", n.NodeID(), m.ID, m.Region)
			}
		}
	}
	// As seen from u2, the last node checked.
	l := seen["eu-1"]
	if l.GRPCAddr != "127.0.0.1:1e1" || l.RaftAddr != "127.0.0.1:2e1" || l.GossipAddr != e1.WANAddr() {
		t.Errorf("eu-1 leader as seen from u2: %+v", l)
	}
}

func TestLeaderFlagPropagates(t *testing.T) {
	a, b := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	mustJoin(t, b.JoinWAN, a.WANAddr())
	waitFor(t, waitTimeout, "b to see a", func() bool { return allAlive(b.LANMembers(), "a", "b") })

	leaderIn := func(members []Member) bool { m, _ := memberByID(members, "a"); return m.Leader }
	if err := a.SetLeader(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "b to see a lead in both pools", func() bool {
		return leaderIn(b.LANMembers()) && leaderIn(b.WANMembers())
	})
	for _, pool := range []Pool{LAN, WAN} {
		// An update as a rule; a join if b meanwhile took a for dead (a loaded machine misses
		// probes) and a refuted it.
		waitFor(t, waitTimeout, "b's "+pool.String()+" event for a's leadership", func() bool {
			return b.events.has(func(e Event) bool {
				return e.Type != EventLeave && e.Pool == pool && e.Member.ID == "a" && e.Member.Leader
			})
		})
	}
	if err := a.SetLeader(false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "b to see a step down in both pools", func() bool {
		return !leaderIn(b.LANMembers()) && !leaderIn(b.WANMembers())
	})
	if _, ok := b.RegionLeaders()["eu-1"]; ok {
		t.Errorf("RegionLeaders still names a leader for eu-1: %+v", b.RegionLeaders())
	}
}

// Region peers that were each given a LAN seed but no WAN seed still end up in one WAN pool:
// the LAN metadata carries every node's WAN address.
func TestRegionPeersJoinEachOthersWANPool(t *testing.T) {
	a, b, c := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1"), startNode(t, "c", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	mustJoin(t, c.JoinLAN, a.LANAddr())
	waitFor(t, waitTimeout, "c to see the region", func() bool { return allAlive(c.LANMembers(), "a", "b", "c") })

	if n, err := c.JoinRegionPeersWAN(); err != nil || n != 2 {
		t.Fatalf("JoinRegionPeersWAN = %d, %v; want 2 peers joined", n, err)
	}
	for _, n := range []*testNode{a, b, c} {
		waitFor(t, waitTimeout, n.NodeID()+" to see the region in the WAN pool", func() bool {
			return allAlive(n.WANMembers(), "a", "b", "c")
		})
	}
	if n, err := a.JoinRegionPeersWAN(); err != nil || n != 0 {
		t.Errorf("JoinRegionPeersWAN with nothing missing = %d, %v; want 0, nil", n, err)
	}
}

func TestRoleChangePropagates(t *testing.T) {
	a, b := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	mustJoin(t, b.JoinWAN, a.WANAddr())
	waitFor(t, waitTimeout, "b to see a", func() bool { return allAlive(b.LANMembers(), "a", "b") })

	roleIn := func(members []Member) cluster.Suffrage { m, _ := memberByID(members, "a"); return m.Role }
	if err := a.SetRole(cluster.Nonvoter); err != nil {
		t.Fatal(err)
	}
	if a.Role() != cluster.Nonvoter {
		t.Fatalf("Role() = %s after SetRole(nonvoter)", a.Role())
	}
	waitFor(t, waitTimeout, "b to see a as a nonvoter in both pools", func() bool {
		return roleIn(b.LANMembers()) == cluster.Nonvoter && roleIn(b.WANMembers()) == cluster.Nonvoter
	})
	// The leader flag and the role are one record: changing one keeps the other.
	if err := a.SetLeader(true); err != nil {
		t.Fatal(err)
	}
	if err := a.SetRole(cluster.Voter); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "b to see a as a leading voter", func() bool {
		m, _ := memberByID(b.LANMembers(), "a")
		return m.Role == cluster.Voter && m.Leader
	})
	if err := a.SetRole(cluster.Suffrage(7)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("SetRole(7): err = %v, want ErrInvalidConfig", err)
	}
}

func TestWrongKeyringCannotJoin(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	intruder := startNode(t, "x", "eu-1", func(c *Config) { c.Keys = [][]byte{testKey("other")} })

	if _, err := intruder.JoinLAN([]string{a.LANAddr()}); !errors.Is(err, ErrJoin) {
		t.Fatalf("LAN join with another key: err = %v, want ErrJoin", err)
	}
	if _, err := intruder.JoinWAN([]string{a.WANAddr()}); !errors.Is(err, ErrJoin) {
		t.Fatalf("WAN join with another key: err = %v, want ErrJoin", err)
	}
	if !allAlive(a.LANMembers(), "a") || !allAlive(a.WANMembers(), "a") {
		t.Errorf("a lists %v / %v, want itself only", a.LANMembers(), a.WANMembers())
	}
	if !allAlive(intruder.LANMembers(), "x") {
		t.Errorf("intruder lists %v, want itself only", intruder.LANMembers())
	}
}

// Rotation's middle step: one node still encrypts with the old key, the other already with the
// new one, and each accepts both.
func TestKeyringRotationOverlapJoins(t *testing.T) {
	oldKey, newKey := testKey("old"), testKey("new")
	a := startNode(t, "a", "eu-1", func(c *Config) { c.Keys = [][]byte{oldKey, newKey} })
	b := startNode(t, "b", "eu-1", func(c *Config) { c.Keys = [][]byte{newKey, oldKey} })
	mustJoin(t, b.JoinLAN, a.LANAddr())
	for _, n := range []*testNode{a, b} {
		waitFor(t, waitTimeout, n.NodeID()+" to see both", func() bool { return allAlive(n.LANMembers(), "a", "b") })
	}
}

func TestSeparateWANKeys(t *testing.T) {
	wanKey := testKey("wan")
	a := startNode(t, "a", "eu-1", func(c *Config) { c.WANKeys = [][]byte{wanKey} })
	b := startNode(t, "b", "us-1", func(c *Config) { c.Keys = [][]byte{testKey("us lan")}; c.WANKeys = [][]byte{wanKey} })
	c := startNode(t, "c", "us-1", func(c *Config) { c.Keys = [][]byte{testKey("us lan")} })
	mustJoin(t, b.JoinWAN, a.WANAddr())
	waitFor(t, waitTimeout, "a to see b over WAN", func() bool { return allAlive(a.WANMembers(), "a", "b") })
	if _, err := c.JoinWAN([]string{a.WANAddr()}); !errors.Is(err, ErrJoin) {
		t.Fatalf("WAN join with the LAN key: err = %v, want ErrJoin", err)
	}
}

func TestLANRefusesAnotherRegion(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	x := startNode(t, "x", "us-1")
	if _, err := x.JoinLAN([]string{a.LANAddr()}); !errors.Is(err, ErrJoin) {
		t.Fatalf("LAN join across regions: err = %v, want ErrJoin", err)
	}
	if !allAlive(a.LANMembers(), "a") || !allAlive(x.LANMembers(), "x") {
		t.Errorf("LAN pools mixed: a lists %v, x lists %v", a.LANMembers(), x.LANMembers())
	}
	// The seed answers before it merges, so its own refusal may come after the joiner's.
	waitFor(t, waitTimeout, "the seed to refuse the foreign node too", func() bool { return a.lan.refused.Load() > 0 })
	// Across regions is what the WAN pool is for.
	mustJoin(t, x.JoinWAN, a.WANAddr())
	waitFor(t, waitTimeout, "a to see x over WAN", func() bool { return allAlive(a.WANMembers(), "a", "x") })
}

// A LAN address given as a WAN seed must not merge the pools: their labels differ.
func TestPoolsDoNotCrossJoin(t *testing.T) {
	a, b := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1")
	if _, err := b.JoinWAN([]string{a.LANAddr()}); !errors.Is(err, ErrJoin) {
		t.Fatalf("WAN join through a LAN address: err = %v, want ErrJoin", err)
	}
	if !allAlive(a.LANMembers(), "a") || !allAlive(b.WANMembers(), "b") {
		t.Errorf("pools merged: a LAN %v, b WAN %v", a.LANMembers(), b.WANMembers())
	}
}

func TestDeadAndLeftMembers(t *testing.T) {
	a, b, c := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1"), startNode(t, "c", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	mustJoin(t, c.JoinLAN, a.LANAddr())
	// A node that never heard of c alive ignores news of its death.
	for _, n := range []*testNode{a, b} {
		waitFor(t, waitTimeout, n.NodeID()+" to see the region", func() bool { return allAlive(n.LANMembers(), "a", "b", "c") })
	}

	killed := time.Now()
	if err := c.Shutdown(); err != nil { // a crash: no leave message
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b} {
		waitFor(t, waitTimeout, n.NodeID()+" to declare c dead", func() bool {
			m, _ := memberByID(n.LANMembers(), "c")
			return m.Status == StatusDead
		})
		m, _ := memberByID(n.LANMembers(), "c")
		if m.LastChange.Before(killed) {
			t.Errorf("%s: c's LastChange %v predates its death at %v", n.NodeID(), m.LastChange, killed)
		}
	}
	waitFor(t, waitTimeout, "a's leave event for c", func() bool {
		return a.events.has(func(e Event) bool { return e.Type == EventLeave && e.Member.ID == "c" && e.Member.Status == StatusDead })
	})

	if err := b.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "a to list b as left", func() bool {
		m, _ := memberByID(a.LANMembers(), "b")
		return m.Status == StatusLeft
	})
	if _, err := b.JoinLAN([]string{a.LANAddr()}); !errors.Is(err, ErrShutdown) {
		t.Errorf("join after shutdown: err = %v, want ErrShutdown", err)
	}
}

func TestRetryJoinWaitsForASeed(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	calls := 0
	flaky := func(seeds []string) (int, error) {
		calls++
		if calls < 3 { // the seed is not up yet
			return a.JoinLAN([]string{"127.0.0.1:1"})
		}
		return 1, nil
	}
	if n, err := RetryJoin(t.Context(), flaky, []string{"seed"}, time.Millisecond); err != nil || n != 1 || calls != 3 {
		t.Fatalf("RetryJoin = %d, %v after %d calls", n, err, calls)
	}

	b := startNode(t, "b", "eu-1")
	if _, err := RetryJoin(t.Context(), b.JoinLAN, []string{a.LANAddr()}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "a to see b", func() bool { return allAlive(a.LANMembers(), "a", "b") })
}

func TestRetryJoinStopsWithContext(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tries := 0
	_, err := RetryJoin(ctx, func(seeds []string) (int, error) {
		if tries++; tries == 3 {
			cancel()
		}
		return a.JoinLAN(seeds)
	}, []string{"127.0.0.1:1"}, time.Millisecond)
	if !errors.Is(err, ErrJoin) || !errors.Is(err, ctx.Err()) {
		t.Fatalf("err = %v, want ErrJoin and context.Canceled", err)
	}

	_ = a.Shutdown()
	calls := 0
	_, err = RetryJoin(t.Context(), func(seeds []string) (int, error) { calls++; return a.JoinLAN(seeds) }, []string{"x"}, time.Millisecond)
	if !errors.Is(err, ErrShutdown) || calls != 1 {
		t.Fatalf("after shutdown: err = %v after %d calls, want ErrShutdown at once", err, calls)
	}
}

// Events reach OnEvent in the order memberlist saw them: the last one about a member matches
// its final state.
func TestEventsArriveInOrder(t *testing.T) {
	a, b := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	waitFor(t, waitTimeout, "a to see b", func() bool { return allAlive(a.LANMembers(), "a", "b") })
	for _, leader := range []bool{true, false, true} {
		if err := b.SetLeader(leader); err != nil {
			t.Fatal(err)
		}
	}
	aboutB := func() []Event {
		a.events.mu.Lock()
		defer a.events.mu.Unlock()
		var out []Event
		for _, e := range a.events.events {
			if e.Pool == LAN && e.Member.ID == "b" {
				out = append(out, e)
			}
		}
		return out
	}
	waitFor(t, waitTimeout, "a's last event about b to say it leads", func() bool {
		seq := aboutB()
		return len(seq) > 0 && seq[len(seq)-1].Member.Leader
	})
	seq := aboutB()
	if seq[0].Type != EventJoin {
		t.Errorf("first event about b is %v, want join", seq[0].Type)
	}
}

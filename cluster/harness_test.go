package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const (
	eventually  = 20 * time.Second // upper bound for conditions that normally hold in milliseconds
	opTimeout   = 10 * time.Second
	pollEvery   = 2 * time.Millisecond
	testPayload = "v"
)

var errUnreachable = errors.New("test network: leader unreachable")

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func ctxWithTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testLogger sends raft's logs to stderr when CLUSTER_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("CLUSTER_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testNode struct {
	*Node
	sm    *kvMachine
	id    string
	dir   string
	addr  string
	inmem *raft.InmemTransport // nil over TCP
}

// testCluster runs nodes in one process. Followers fetch read indexes by calling the leader's
// LeaderReadIndex directly, through a fault-injectable "network" that partitions can cut.
type testCluster struct {
	t    testing.TB
	tune func(*Config)

	mu    sync.Mutex
	nodes map[string]*testNode // running nodes
	cut   map[string]bool      // partitioned node ids
	side  map[string]bool      // nodes split off together from the rest (split)
	// slow: nodes that stay connected but never confirm an index to the leader's applied
	// waiter, as a follower whose disk has stalled.
	slow map[string]bool
}

func newTestCluster(t testing.TB, tune func(*Config)) *testCluster {
	return &testCluster{t: t, tune: tune, nodes: map[string]*testNode{}, cut: map[string]bool{}, side: map[string]bool{}, slow: map[string]bool{}}
}

func fastTimings(cfg *Config) {
	cfg.HeartbeatTimeout = 400 * time.Millisecond
	cfg.ElectionTimeout = 400 * time.Millisecond
	cfg.LeaderLeaseTimeout = 400 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.ReadIndexTimeout = time.Second
}

// start opens a node; addr is a TCP bind address, or "" for an in-memory transport.
func (c *testCluster) start(id, dir, addr string) *testNode {
	c.t.Helper()
	tn := &testNode{sm: newKVMachine(), id: id, dir: dir}
	cfg := Config{
		NodeID:       id,
		DataDir:      dir,
		BindAddr:     addr,
		StateMachine: tn.sm,
		Snapshot:     tn.sm.Snapshot,
		Logger:       testLogger(),
	}
	fastTimings(&cfg)
	if addr == "" {
		_, tn.inmem = raft.NewInmemTransport(raft.ServerAddress(id))
		cfg.Transport = tn.inmem
	}
	if c.tune != nil {
		c.tune(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	tn.Node = n
	tn.addr = n.RaftAddr()
	n.SetReadIndexFetcher(c.fetcher(id))
	n.SetAppliedWaiter(c.appliedWaiter(id))
	c.t.Cleanup(func() { _ = n.Shutdown() })

	c.mu.Lock()
	defer c.mu.Unlock()
	if tn.inmem != nil {
		for _, other := range c.nodes {
			if other.inmem != nil {
				tn.inmem.Connect(raft.ServerAddress(other.addr), other.inmem)
				other.inmem.Connect(raft.ServerAddress(tn.addr), tn.inmem)
			}
		}
	}
	c.nodes[id] = tn
	return tn
}

func (c *testCluster) fetcher(self string) ReadIndexFetcher {
	return func(ctx context.Context, leaderID string, applied uint64) (ReadIndexReply, error) {
		c.mu.Lock()
		leader, blocked := c.nodes[leaderID], c.blocked(self, leaderID)
		c.mu.Unlock()
		if leader == nil || blocked {
			return ReadIndexReply{}, errUnreachable
		}
		return leader.ServeReadIndex(ctx, self, applied)
	}
}

// appliedWaiter is the leader's call to a leased follower, through the same cuttable network.
func (c *testCluster) appliedWaiter(self string) AppliedWaiter {
	return func(ctx context.Context, nodeID string, index uint64) (uint64, error) {
		c.mu.Lock()
		follower, blocked, slow := c.nodes[nodeID], c.blocked(self, nodeID), c.slow[nodeID]
		c.mu.Unlock()
		if follower == nil || blocked {
			return 0, errUnreachable
		}
		if slow {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		return follower.WaitApplied(ctx, index)
	}
}

// setSlow makes n confirm no index to the leader (slow) or lets it again.
func (c *testCluster) setSlow(n *testNode, slow bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slow[n.id] = slow
}

// bootstrap starts size nodes, bootstraps the first and adds the others as voters.
func (c *testCluster) bootstrap(size int, tcp bool) []*testNode {
	c.t.Helper()
	nodes := make([]*testNode, size)
	for i := range nodes {
		addr := ""
		if tcp {
			addr = "127.0.0.1:0"
		}
		nodes[i] = c.start(fmt.Sprintf("n%d", i+1), c.t.TempDir(), addr)
	}
	if err := nodes[0].Bootstrap(); err != nil {
		c.t.Fatalf("bootstrap: %v", err)
	}
	leader := c.waitLeader(nodes[:1]...)
	for _, n := range nodes[1:] {
		if err := leader.AddVoter(ctxWithTimeout(c.t, opTimeout), n.id, n.addr); err != nil {
			c.t.Fatalf("add voter %s: %v", n.id, err)
		}
	}
	// A commit needs only a majority of the new configuration, so one node may not have the
	// last configuration entry yet; raft refuses its vote to servers missing from its own
	// configuration, so a failover right now could stall. Tests start from a settled group.
	for _, n := range nodes {
		waitFor(c.t, eventually, n.id+" to know every member", func() bool {
			servers, err := n.Servers()
			return err == nil && len(servers) == size
		})
	}
	c.waitLeader(nodes...)
	return nodes
}

// waitLeader waits until one of among is leader and all of among agree on it.
func (c *testCluster) waitLeader(among ...*testNode) *testNode {
	c.t.Helper()
	var leader *testNode
	waitFor(c.t, eventually, "an agreed leader", func() bool {
		leader = nil
		for _, n := range among {
			if n.IsLeader() {
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range among {
			if id, _ := n.Leader(); id != leader.id {
				return false
			}
		}
		return true
	})
	return leader
}

func (c *testCluster) stop(n *testNode) {
	c.t.Helper()
	if err := n.Shutdown(); err != nil {
		c.t.Fatalf("shutdown %s: %v", n.id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nodes, n.id)
}

// restart reopens a stopped node on its old data dir and address.
func (c *testCluster) restart(n *testNode) *testNode {
	c.t.Helper()
	addr := n.addr
	if n.inmem != nil {
		addr = ""
	}
	return c.start(n.id, n.dir, addr)
}

// partition cuts n off from every other node, in both directions.
func (c *testCluster) partition(n *testNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut[n.id] = true
	n.inmem.DisconnectAll()
	for _, other := range c.nodes {
		if other != n {
			other.inmem.Disconnect(raft.ServerAddress(n.addr))
		}
	}
}

// blocked reports whether the test network cuts a from b; c.mu is held.
func (c *testCluster) blocked(a, b string) bool {
	return c.cut[a] || c.cut[b] || c.side[a] != c.side[b]
}

// split cuts minority off from the other nodes, keeping the links among minority.
func (c *testCluster) split(minority ...*testNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range minority {
		c.side[n.id] = true
	}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if c.side[a.id] != c.side[b.id] {
				a.inmem.Disconnect(raft.ServerAddress(b.addr))
			}
		}
	}
}

// unsplit undoes split.
func (c *testCluster) unsplit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b && c.side[a.id] != c.side[b.id] {
				a.inmem.Connect(raft.ServerAddress(b.addr), b.inmem)
			}
		}
	}
	clear(c.side)
}

func (c *testCluster) heal(n *testNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cut, n.id)
	for _, other := range c.nodes {
		if other != n {
			other.inmem.Connect(raft.ServerAddress(n.addr), n.inmem)
			n.inmem.Connect(raft.ServerAddress(other.addr), other.inmem)
		}
	}
}

func others(all []*testNode, except ...*testNode) []*testNode {
	var out []*testNode
	for _, n := range all {
		excluded := false
		for _, e := range except {
			excluded = excluded || n == e
		}
		if !excluded {
			out = append(out, n)
		}
	}
	return out
}

func mustApply(t testing.TB, n *testNode, key, value string) uint64 {
	t.Helper()
	res, err := n.Apply(ctxWithTimeout(t, opTimeout), kvCommand(key, value))
	if err != nil {
		t.Fatalf("apply %s on %s: %v", key, n.id, err)
	}
	return res.(uint64)
}

func waitValue(t testing.TB, nodes []*testNode, key, value string) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, eventually, fmt.Sprintf("%s=%s on %s", key, value, n.id), func() bool {
			v, _ := n.sm.Get(key)
			return v == value
		})
	}
}

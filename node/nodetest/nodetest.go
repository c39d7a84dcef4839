// Package nodetest starts Trent regions in-process for tests: real nodes,
// real gRPC and Raft over mutual TLS on 127.0.0.1 with port 0, a cluster CA
// and certificates, raft-boltdb and the HSM store on disk under t.TempDir(),
// and short Raft timeouts.
package nodetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// Options shape a test region. Zero values give 3 software-HSM nodes.
type Options struct {
	Nodes             int
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// Configure, if set, edits each node's config before its first start
	// (for example to use a PKCS#11 token).
	Configure func(i int, cfg *node.Config)
	// Clock stamps commands; nil means the real clock.
	Clock *Clock
	// Logs sends node logs to the test log (noisy; for debugging).
	Logs bool
	// Region names the region; default RegionName. Two test regions need
	// two names.
	Region string
	// ShareCA, if set, issues this region's certificates from that region's
	// CA, so that the nodes of both trust each other (cross-region
	// replication) and one client certificate works in both.
	ShareCA *Region
}

// Region is a running test region.
type Region struct {
	t     testing.TB
	mu    sync.Mutex
	cfgs  []node.Config
	nodes []*node.Node // nil while stopped
	conns map[string]*grpc.ClientConn
	pki   *testPKI
	opts  Options
	dir   string
}

// RegionName is the region a test region is, and its certificates name,
// unless Options.Region names another.
const RegionName = "test-1"

// certPoll is how often test nodes look for rotated certificate files, so a
// rotation test waits a fraction of a second rather than kmsd's default.
const certPoll = 50 * time.Millisecond

// StartTimeout bounds how long a node may take to form, join or rejoin.
const StartTimeout = 30 * time.Second

// StartRegion bootstraps node 0 and joins the others to it.
func StartRegion(t testing.TB, opts Options) *Region {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Region == "" {
		opts.Region = RegionName
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "join-secret")
	if err := os.WriteFile(secret, []byte("test-join-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &Region{t: t, conns: make(map[string]*grpc.ClientConn), opts: opts, dir: dir}
	if opts.ShareCA != nil {
		r.pki = opts.ShareCA.pki
	} else {
		r.pki = newTestPKI(t, dir)
	}
	t.Cleanup(r.closeAll)
	for i := 0; i < opts.Nodes; i++ {
		cfg := r.nodeConfig(i)
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		r.cfgs = append(r.cfgs, cfg)
		r.nodes = append(r.nodes, nil)
		r.Restart(i)
	}
	return r
}

// nodeConfig is node i's config before Options.Configure: node 0
// bootstraps, the others join it.
func (r *Region) nodeConfig(i int) node.Config {
	logger := slog.New(slog.DiscardHandler)
	if r.opts.Logs {
		logger = slog.New(slog.NewTextHandler(testWriter{r.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := node.Config{
		DataDir:              filepath.Join(r.dir, fmt.Sprintf("node%d", i)),
		NodeID:               fmt.Sprintf("node%d", i),
		Region:               r.opts.Region,
		JoinSecretFile:       filepath.Join(r.dir, "join-secret"),
		TLSPollInterval:      certPoll,
		Logger:               logger,
		RaftHeartbeatTimeout: 400 * time.Millisecond,
		RaftElectionTimeout:  400 * time.Millisecond,
		SnapshotThreshold:    r.opts.SnapshotThreshold,
		TrailingLogs:         r.opts.TrailingLogs,
		LeaderTick:           50 * time.Millisecond,
		ReadRetry:            time.Second,
		ProposeTimeout:       3 * time.Second,
	}
	if r.opts.Clock != nil {
		cfg.Now = r.opts.Clock.Now
	}
	r.IssueNodeCert(&cfg)
	if i == 0 {
		cfg.Bootstrap = true
	} else {
		cfg.Join = r.nodes[0].GRPCAddr()
	}
	return cfg
}

// AddNode starts one more node, configured like the others (joining node 0,
// then Options.Configure) and then by configure, and returns its index.
func (r *Region) AddNode(configure func(cfg *node.Config)) int {
	r.t.Helper()
	i := len(r.cfgs)
	if r.Node(0) == nil {
		r.t.Fatal("AddNode: node0 is stopped")
	}
	cfg := r.nodeConfig(i)
	if r.opts.Configure != nil {
		r.opts.Configure(i, &cfg)
	}
	if configure != nil {
		configure(&cfg)
	}
	r.mu.Lock()
	r.cfgs = append(r.cfgs, cfg)
	r.nodes = append(r.nodes, nil)
	r.mu.Unlock()
	r.Restart(i)
	return i
}

// Len returns the number of nodes, running or stopped.
func (r *Region) Len() int { return len(r.cfgs) }

// Node returns node i, or nil while it is stopped.
func (r *Region) Node(i int) *node.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[i]
}

// DataDir returns node i's data directory.
func (r *Region) DataDir(i int) string { return r.cfgs[i].DataDir }

// Stop closes node i (its data dir stays).
func (r *Region) Stop(i int) {
	r.t.Helper()
	r.mu.Lock()
	n := r.nodes[i]
	r.nodes[i] = nil
	r.mu.Unlock()
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		r.t.Logf("close node%d: %v", i, err)
	}
}

// Restart starts node i from its data dir (or for the first time).
func (r *Region) Restart(i int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	n, err := node.Start(ctx, r.cfgs[i])
	if err != nil {
		r.t.Fatalf("start node%d: %v", i, err)
	}
	r.mu.Lock()
	r.nodes[i] = n
	r.mu.Unlock()
}

// RestartAll starts every stopped node concurrently: a lone restarted node
// of a stopped region cannot elect a leader, so sequential starts would wait
// on each other.
func (r *Region) RestartAll() {
	r.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(r.cfgs))
	for i := range r.cfgs {
		if r.Node(i) != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
			defer cancel()
			n, err := node.Start(ctx, r.cfgs[i])
			if err != nil {
				errs[i] = fmt.Errorf("start node%d: %w", i, err)
				return
			}
			r.mu.Lock()
			r.nodes[i] = n
			r.mu.Unlock()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			r.t.Fatal(err)
		}
	}
}

// Running returns the indexes of running nodes.
func (r *Region) Running() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for i, n := range r.nodes {
		if n != nil {
			out = append(out, i)
		}
	}
	return out
}

// Leader waits for a running node to lead and returns its index.
func (r *Region) Leader() int {
	r.t.Helper()
	leader := -1
	WaitFor(r.t, StartTimeout, "a leader among running nodes", func() bool {
		for _, i := range r.Running() {
			if n := r.Node(i); n != nil && n.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// Followers returns the running nodes other than the current leader.
func (r *Region) Followers() []int {
	leader := r.Leader()
	var out []int
	for _, i := range r.Running() {
		if i != leader {
			out = append(out, i)
		}
	}
	return out
}

// Conn returns a client connection to node i as the admin (principal
// "admin", role "admin"), cached per address.
func (r *Region) Conn(i int) *grpc.ClientConn {
	r.t.Helper()
	return r.ConnAs(i, pki.DevAdminPrincipal, pki.DevAdminRole)
}

// ConnAs returns a client connection to node i presenting a client
// certificate for principal with roles, issued on first use; connections are
// cached per address and identity.
func (r *Region) ConnAs(i int, principal string, roles ...string) *grpc.ClientConn {
	r.t.Helper()
	n := r.Node(i)
	if n == nil {
		r.t.Fatalf("node%d is stopped", i)
	}
	dir := r.pki.clientDir(principal, roles)
	key := n.GRPCAddr() + " " + dir
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[key]; ok {
		return c
	}
	c, err := DialTLS(n.GRPCAddr(), dir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.conns[key] = c
	return c
}

// KMS returns a KMS client for node i.
func (r *Region) KMS(i int) kmspb.KMSClient { return kmspb.NewKMSClient(r.Conn(i)) }

// Cluster returns a Cluster client for node i.
func (r *Region) Cluster(i int) kmspb.ClusterClient { return kmspb.NewClusterClient(r.Conn(i)) }

func (r *Region) closeAll() {
	r.mu.Lock()
	for addr, c := range r.conns {
		_ = c.Close()
		delete(r.conns, addr)
	}
	r.mu.Unlock()
	for i := range r.cfgs {
		r.Stop(i)
	}
}

// WaitFor polls cond until it holds or timeout passes, then fails the test
// naming what it waited for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Clock is a settable clock for tests of time-driven work (rotation,
// deletion). It starts at the real time and only moves forward by Advance.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the real time plus everything Advance added.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// countingFSM is the cheapest state machine possible, so the baseline
// measures Raft and its log store only. It batches because Trent's FSM is
// expected to.
type countingFSM struct {
	applied atomic.Uint64
}

func (f *countingFSM) Apply(*raft.Log) any {
	f.applied.Add(1)
	return nil
}

func (f *countingFSM) ApplyBatch(logs []*raft.Log) []any {
	f.applied.Add(uint64(len(logs)))
	return make([]any, len(logs))
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.applied.Load()), nil
}

func (f *countingFSM) Restore(rc io.ReadCloser) error {
	return rc.Close()
}

type countSnapshot uint64

func (countSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (countSnapshot) Release()                             {}

type raftNode struct {
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	fsm       *countingFSM
}

// raftCluster is N voters in this process talking TCP over loopback, each
// with its own bolt log in dir.
type raftCluster struct {
	nodes []*raftNode
}

// logCacheSize matches what hashicorp's own servers (Consul, Nomad, Vault)
// put in front of their bolt log stores.
const logCacheSize = 512

func startRaftCluster(n int, dir string, logger hclog.Logger) (*raftCluster, error) {
	c := &raftCluster{}
	var addrs []raft.ServerAddress
	for i := range n {
		transport, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, logger)
		if err != nil {
			c.shutdown()
			return nil, err
		}
		node, err := openRaftNode(i, filepath.Join(dir, fmt.Sprintf("node%d", i+1)), transport, logger)
		if err != nil {
			c.shutdown()
			return nil, err
		}
		c.nodes = append(c.nodes, node)
		addrs = append(addrs, transport.LocalAddr())
	}
	for i, node := range c.nodes {
		if err := node.raft.BootstrapCluster(bootstrapConfiguration(addrs)).Error(); err != nil {
			c.shutdown()
			return nil, fmt.Errorf("bootstrapping node%d: %w", i+1, err)
		}
	}
	return c, nil
}

// openRaftNode opens voter i as both Raft baselines run it: a bolt log in dir
// behind a log cache, file snapshots, BatchApplyCh, the counting FSM, over
// transport (closed on failure). It has no configuration until bootstrapped.
func openRaftNode(i int, dir string, transport *raft.NetworkTransport, logger hclog.Logger) (*raftNode, error) {
	node := &raftNode{fsm: &countingFSM{}, transport: transport}
	fail := func(err error) (*raftNode, error) {
		node.close()
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	var err error
	if node.store, err = raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db")); err != nil {
		return fail(err)
	}
	logs, err := raft.NewLogCache(logCacheSize, node.store)
	if err != nil {
		return fail(err)
	}
	snapshots, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, logger)
	if err != nil {
		return fail(err)
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raftNodeID(i)
	conf.BatchApplyCh = true
	conf.Logger = logger.Named(string(conf.LocalID))
	if node.raft, err = raft.NewRaft(conf, node.fsm, logs, node.store, snapshots, node.transport); err != nil {
		return fail(err)
	}
	return node, nil
}

// bootstrapConfiguration has voter i at addrs[i].
func bootstrapConfiguration(addrs []raft.ServerAddress) raft.Configuration {
	var c raft.Configuration
	for i, addr := range addrs {
		c.Servers = append(c.Servers, raft.Server{ID: raftNodeID(i), Address: addr})
	}
	return c
}

// close shuts down what open opened, in reverse order.
func (n *raftNode) close() {
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
	_ = n.transport.Close()
	if n.store != nil {
		_ = n.store.Close()
	}
}

func (c *raftCluster) waitLeader(ctx context.Context) (*raft.Raft, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, n := range c.nodes {
			if n.raft.State() == raft.Leader {
				return n.raft, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("no leader elected")
		case <-tick.C:
		}
	}
}

func (c *raftCluster) shutdown() {
	for _, n := range c.nodes {
		n.close()
	}
}

// raftNodeID names the i-th node (from 0) of a baseline cluster.
func raftNodeID(i int) raft.ServerID { return raft.ServerID(fmt.Sprintf("node%d", i+1)) }

// runRaftBaseline starts the voters under a temporary directory, waits for
// a leader, measures, then stops them and removes the directory.
func runRaftBaseline(ctx context.Context, cfg *raftBaselineConfig, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "kmsbench raft-baseline: "+format+"\n", args...)
	}
	dir, err := os.MkdirTemp("", "kmsbench-raft-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(dir)

	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: stderr})
	cluster, err := startRaftCluster(cfg.nodes, dir, logger)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer cluster.shutdown()
	electCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	leader, err := cluster.waitLeader(electCtx)
	cancel()
	if err != nil {
		logf("%v", err)
		return 1
	}
	return measureRaftApply(ctx, cfg, leader, stdout, logf)
}

func measureRaftApply(ctx context.Context, cfg *raftBaselineConfig, leader *raft.Raft, stdout io.Writer, logf func(string, ...any)) int {
	entry := make([]byte, cfg.size)
	m := load{
		concurrency: cfg.concurrency,
		warmup:      cfg.warmup,
		duration:    cfg.duration,
		timeout:     cfg.timeout,
		newWorker: func(int) request {
			return func(ctx context.Context) error {
				deadline, _ := ctx.Deadline()
				return leader.Apply(entry, time.Until(deadline)).Error()
			}
		},
	}.run(ctx)

	r := result{label: cfg.label, op: "raft-apply", concurrency: cfg.concurrency, size: cfg.size, measurement: m}
	if err := r.write(stdout, cfg.jsonOutput); err != nil {
		logf("%v", err)
		return 1
	}
	if m.ops == 0 {
		logf("no apply succeeded")
		return 1
	}
	return 0
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Node is one member of a Raft group: the *raft.Raft, its stores and transport, and the
// read-index machinery built on top.
type Node struct {
	cfg       Config
	raft      *raft.Raft
	sm        StateMachine
	logs      raft.LogStore
	store     *raftboltdb.BoltStore
	tcp       *raft.NetworkTransport // nil when the caller supplied the transport
	transport closableTransport      // tcp or the caller's, behind a heartbeatGate
	hasState  bool

	leadership *leadershipFanout
	leaderSeen *broadcast
	observer   *raft.Observer

	leaderReads   *roundBatcher
	followerReads *roundBatcher
	nudger        *commitNudger
	fetcher       atomic.Pointer[ReadIndexFetcher]
	readIndex     readIndexState
	lease         heldLease
	grants        leaseGrants
	appliedWaiter atomic.Pointer[AppliedWaiter]

	lifetime     context.Context
	stop         context.CancelFunc
	workers      sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// Open opens (or creates) the node's stores under cfg.DataDir and starts Raft. A node whose
// stores hold no state does nothing until Bootstrap, or until a leader adds it.
func Open(cfg Config) (_ *Node, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cluster: invalid config: %w", err)
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}

	var cleanup []func() error
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				_ = cleanup[i]()
			}
		}
	}()

	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("cluster: open raft.db: %w", err)
	}
	cleanup = append(cleanup, store.Close)
	logs, err := raft.NewLogCache(logCacheEntries, store)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, newHCLogger(cfg.Logger, "snapshots"))
	if err != nil {
		return nil, fmt.Errorf("cluster: open snapshots: %w", err)
	}

	n := &Node{cfg: cfg, sm: cfg.StateMachine, logs: logs, store: store}
	trans := cfg.Transport
	if trans == nil {
		if n.tcp, err = openTCPTransport(cfg); err != nil {
			return nil, err
		}
		cleanup = append(cleanup, n.tcp.Close)
		trans = n.tcp
	}
	n.transport = gateHeartbeats(trans)

	if n.hasState, err = raft.HasExistingState(logs, store, snaps); err != nil {
		return nil, fmt.Errorf("cluster: inspect stores: %w", err)
	}

	if n.hasState && cfg.readLease > 0 {
		// Before its crash this node may have acknowledged a round that gave the
		// leader a read lease. Having forgotten its leader, it would vote for a
		// rival at once; staying out of Raft for one lease keeps the lease sound.
		time.Sleep(cfg.readLease)
	}

	notify := make(chan bool, 1)
	fsm := &fsmAdapter{sm: cfg.StateMachine, snapshot: cfg.Snapshot}
	if n.raft, err = raft.NewRaft(cfg.raftConfig(notify), fsm, logs, store, snaps, n.transport); err != nil {
		return nil, fmt.Errorf("cluster: start raft: %w", err)
	}

	n.lifetime, n.stop = context.WithCancel(context.Background())
	n.leaderReads = newRoundBatcher(n.lifetime, cfg.ReadIndexTimeout, n.verifiedReadIndex)
	n.followerReads = newRoundBatcher(n.lifetime, cfg.ReadIndexTimeout, n.fetchReadIndex)
	// Bounded by the node's lifetime: a barrier still queued when Raft shuts down is never answered.
	n.nudger = newCommitNudger(func() error { return await(n.lifetime, n.raft.Barrier(cfg.ReadIndexTimeout)) })
	n.leadership = newLeadershipFanout()
	n.leaderSeen = &broadcast{}
	n.startLeadershipWatch(notify)
	return n, nil
}

func openTCPTransport(cfg Config) (*raft.NetworkTransport, error) {
	var advertise net.Addr
	if cfg.AdvertiseAddr != "" {
		a, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: advertise address: %w", err)
		}
		advertise = a
	}
	t, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, advertise, maxPooledConnections,
		transportTimeout, newHCLogger(cfg.Logger, "raft-net"))
	if err != nil {
		return nil, fmt.Errorf("cluster: raft transport: %w", err)
	}
	return t, nil
}

// NewStreamTransport is Raft's network transport over stream (the mutual-TLS
// stream layer), pooled and timed out like the built-in TCP transport, logging
// through logger. Pass it as Config.Transport: Raft closes it, and so stream,
// on Shutdown; its address is stream's listener address.
func NewStreamTransport(stream raft.StreamLayer, logger *slog.Logger) *raft.NetworkTransport {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: maxPooledConnections,
		Timeout: transportTimeout,
		Logger:  newHCLogger(logger, "raft-net"),
	})
}

// Bootstrap makes this node the single voter of a new group. It fails with
// ErrAlreadyBootstrapped when the stores already hold Raft state.
func (n *Node) Bootstrap() error {
	if n.hasState {
		return ErrAlreadyBootstrapped
	}
	conf := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       raft.ServerID(n.cfg.NodeID),
		Address:  raft.ServerAddress(n.RaftAddr()),
	}}}
	err := n.raft.BootstrapCluster(conf).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return ErrAlreadyBootstrapped
	}
	return n.translate("bootstrap", err)
}

// HasState reports whether the stores held Raft state when the node was opened.
func (n *Node) HasState() bool { return n.hasState }

// RaftAddr is the address peers use to reach this node's Raft transport.
func (n *Node) RaftAddr() string {
	if n.tcp != nil {
		return string(n.tcp.LocalAddr())
	}
	return string(n.cfg.Transport.LocalAddr())
}

// NodeID is this node's Raft server id.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// CommitIndex is Raft's commit index as this node knows it.
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

// AppliedIndex is the state machine's applied index. Raft's own applied index runs ahead of it:
// raft counts an entry applied once it is handed to the FSM goroutine.
func (n *Node) AppliedIndex() uint64 { return n.sm.AppliedIndex() }

// Stats is raft.Stats plus fsm_applied_index, the state machine's own applied index.
func (n *Node) Stats() map[string]string {
	s := n.raft.Stats()
	s["fsm_applied_index"] = strconv.FormatUint(n.sm.AppliedIndex(), 10)
	return s
}

// TakeSnapshot snapshots the state and compacts the log now. Nothing new since the last
// snapshot is not an error.
func (n *Node) TakeSnapshot() error {
	err := n.raft.Snapshot().Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return nil
	}
	return n.translate("snapshot", err)
}

// Shutdown stops Raft, the node's goroutines and transport, and closes its stores. It is
// idempotent; afterwards operations fail with ErrShutdown.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.stop()
		errs := []error{n.raft.Shutdown().Error()}
		n.leaderReads.close()
		n.followerReads.close()
		n.nudger.close()
		n.grants.close()
		n.workers.Wait()
		n.leadership.close()
		// Raft has closed the transport already; closing it here as well keeps the store
		// from closing under a heartbeat even if Raft did not (see heartbeatGate).
		errs = append(errs, n.transport.Close())
		errs = append(errs, n.store.Close())
		if err := errors.Join(errs...); err != nil {
			n.shutdownErr = fmt.Errorf("cluster: shutdown: %w", err)
		}
	})
	return n.shutdownErr
}

func (n *Node) isShutdown() bool { return n.lifetime.Err() != nil }

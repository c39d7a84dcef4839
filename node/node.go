package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/regions/membership"
	"github.com/trent-kms/trent/transport"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/pki"
)

// streamWorkers covers the concurrency a node sees under load; beyond it gRPC
// falls back to a goroutine per RPC.
const streamWorkers = 256

// Node is one running Trent node.
type Node struct {
	id     string
	addrs  transport.NodeAddrs
	log    *slog.Logger
	hsm    hsm.Backend
	fsm    *fsm.FSM
	raft   *cluster.Node
	server *transport.Server
	grpc   *grpc.Server
	lis    net.Listener
	audit  *audit.Log

	tls       *pki.Reloader          // this node's certificate, reloaded on rotation
	raftTrans *raft.NetworkTransport // Raft over mutual TLS; Raft closes it once opened
	gossip    *gossip                // nil without Config.Gossip
	repl      *replication
}

// Start opens everything cfg names and returns once the node serves: it has
// formed, joined or rejoined its region and caught up with the leader.
func Start(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ident, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &Node{id: cfg.NodeID}
	switch {
	case n.id == "" && ident.NodeID != "":
		n.id = ident.NodeID
	case n.id == "" && cfg.DevTLS: // otherwise the certificate names the node
		if n.id, err = newNodeID(); err != nil {
			return nil, err
		}
		// Saved before the dev certificate is made for it, so that a start
		// failing later (say, on a tampered audit log) is retried as the
		// same node, whose certificate is already in the data dir.
		if err := saveIdentity(cfg.DataDir, identity{NodeID: n.id}); err != nil {
			return nil, fmt.Errorf("save identity: %w", err)
		}
	case ident.NodeID != "" && ident.NodeID != n.id:
		return nil, fmt.Errorf("node id %q: the data dir belongs to node %q", n.id, ident.NodeID)
	}
	defer func() {
		if err != nil {
			_ = n.Close(context.Background())
		}
	}()
	var tlsID pki.Identity
	if n.tls, tlsID, err = openTLS(cfg, n.id, ident); err != nil {
		return nil, err
	}
	// The certificate says who this node is; a joiner learns its region here.
	n.id, cfg.Region = tlsID.NodeID, tlsID.Region
	n.log = cfg.Logger.With("node", n.id)
	if n.audit, err = openAuditLog(cfg, n.log); err != nil {
		return nil, err
	}

	if n.hsm, err = openHSM(ctx, cfg, n.log.With("component", "hsm")); err != nil {
		return nil, err
	}
	if cfg.WrapHSM != nil {
		n.hsm = cfg.WrapHSM(n.hsm)
	}
	if n.lis, err = listen(preferredAddr(cfg.GRPCAddr, ident.GRPCAddr), cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("gRPC listener: %w", err)
	}
	n.addrs.GRPC = n.lis.Addr().String()

	n.fsm = fsm.New(fsm.Config{Logger: n.log.With("component", "fsm")})
	if n.raftTrans, err = openRaftTransport(preferredAddr(cfg.RaftAddr, ident.RaftAddr), n.tls, cfg.Region, n.log); err != nil {
		return nil, err
	}
	n.raft, err = cluster.Open(cluster.Config{
		NodeID:           n.id,
		DataDir:          cfg.DataDir,
		Transport:        n.raftTrans,
		StateMachine:     n.fsm,
		Snapshot:         func() (cluster.StateSnapshot, error) { return n.fsm.Snapshot() },
		Logger:           n.log.With("component", "raft"),
		HeartbeatTimeout: cfg.RaftHeartbeatTimeout,
		ElectionTimeout:  cfg.RaftElectionTimeout,
		// The lease must not exceed the heartbeat timeout; half keeps a
		// shortened heartbeat valid.
		LeaderLeaseTimeout: cfg.RaftHeartbeatTimeout / 2,
		SnapshotThreshold:  cfg.SnapshotThreshold,
		TrailingLogs:       cfg.TrailingLogs,
	})
	if err != nil {
		return nil, err
	}
	n.addrs.Raft = n.raft.RaftAddr()
	var gossipView transport.Gossip
	maxVoters := 0
	if cfg.Gossip != nil {
		if n.gossip, err = startGossip(ctx, cfg, n.raft, cfg.Region, n.addrs, ident, n.log); err != nil {
			return nil, err
		}
		gossipView, maxVoters = n.gossip.members, cfg.Gossip.Voters
	}

	joinSecret, err := readOrCreateSecret(cfg.JoinSecretFile, cfg.Bootstrap && !n.raft.HasState())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("join secret: %w", err)
	}
	n.server, err = transport.New(transport.Config{
		NodeID:         n.id,
		Region:         cfg.Region,
		FSM:            n.fsm,
		Cluster:        n.raft,
		HSM:            n.hsm,
		JoinSecret:     joinSecret,
		PeerDial:       transport.PeerDialer(n.tls, cfg.Region),
		Logger:         n.log.With("component", "transport"),
		Now:            cfg.Now,
		LeaderTick:     cfg.LeaderTick,
		ReadRetry:      cfg.ReadRetry,
		ProposeTimeout: cfg.ProposeTimeout,
		Audit:          n.audit,
		RateLimits:     cfg.RateLimits,
		Gossip:         gossipView,
		MaxVoters:      maxVoters,
	})
	if err != nil {
		return nil, err
	}
	if err := n.startReplication(cfg); err != nil {
		return nil, err
	}
	n.grpc = grpc.NewServer(
		grpc.Creds(transport.ServerCredentials(n.tls, n.log.With("component", "tls"))),
		grpc.ChainUnaryInterceptor(n.server.AuditInterceptor(), n.server.AuthInterceptor(), n.server.UnaryInterceptor()),
		grpc.StreamInterceptor(n.server.AuthStreamInterceptor()),
		// Handlers run on long-lived workers whose stacks have already grown
		// to the request path's depth; a fresh goroutine per RPC spent ~10% of
		// a node's CPU copying its stack as it grew.
		grpc.NumStreamWorkers(streamWorkers),
	)
	n.server.Register(n.grpc)
	go func() { _ = n.grpc.Serve(n.lis) }()

	autoJoin := n.gossip != nil && !n.raft.HasState() && !cfg.Bootstrap && cfg.Join == "" && len(cfg.Gossip.RetryJoin) > 0
	if n.gossip != nil {
		n.gossip.startLoops(n.server, n.registeredRaftAddr, !autoJoin)
	}
	if autoJoin {
		err = n.gossip.autoJoin(ctx, n.server, joinSecret, n.addrs, n.log)
	} else {
		err = n.formOrJoin(ctx, cfg, joinSecret)
	}
	if err != nil {
		return nil, err
	}
	if err := n.server.WaitReady(ctx); err != nil {
		return nil, err
	}
	if err := n.server.EnsureRegistered(ctx, n.addrs); err != nil {
		return nil, fmt.Errorf("register addresses: %w", err)
	}
	ident = identity{NodeID: n.id, RaftAddr: n.addrs.Raft, GRPCAddr: n.addrs.GRPC}
	if n.gossip != nil {
		ident.GossipLANAddr, ident.GossipWANAddr = n.gossip.members.LANAddr(), n.gossip.members.WANAddr()
	}
	if err := saveIdentity(cfg.DataDir, ident); err != nil {
		return nil, fmt.Errorf("save identity: %w", err)
	}
	n.server.Start()
	n.runReplication()
	n.log.Info("serving", "grpc", n.addrs.GRPC, "raft", n.addrs.Raft, "region", n.Region(), "hsm", n.hsm.Kind())
	return n, nil
}

func (n *Node) registeredRaftAddr(id string) (string, bool) {
	node, ok := n.fsm.Node(id)
	return node.GetRaftAddr(), ok
}

// formOrJoin bootstraps a new region or joins an existing one when the data
// dir is empty; a node with state rejoins its region through Raft alone.
func (n *Node) formOrJoin(ctx context.Context, cfg Config, joinSecret []byte) error {
	if n.raft.HasState() {
		if n.fsm.Region() == nil && cfg.Bootstrap {
			return n.initRegionWhenLeader(ctx, cfg)
		}
		return nil
	}
	switch {
	case cfg.Bootstrap:
		if err := n.raft.Bootstrap(); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		return n.initRegionWhenLeader(ctx, cfg)
	case cfg.Join != "":
		if len(joinSecret) == 0 {
			return fmt.Errorf("joining needs the region's join secret in %s", cfg.JoinSecretFile)
		}
		return retry(ctx, n.log, "join", func() error { return n.server.JoinRegion(ctx, cfg.Join, joinSecret, n.addrs) })
	}
	return errors.New("the data dir has no region yet: bootstrap a new region, join one, or use dev mode")
}

func (n *Node) initRegionWhenLeader(ctx context.Context, cfg Config) error {
	if _, err := n.raft.WaitForLeader(ctx); err != nil {
		return err
	}
	return n.server.InitRegion(ctx, cfg.Region, n.addrs)
}

// ReloadTLS reads the node's certificate, key and CA files now instead of
// at the next poll (kmsd calls it on SIGHUP). New connections use the new
// certificate; on error the current one stays and the error is returned.
func (n *Node) ReloadTLS() error { return n.tls.Reload() }

// ID returns the node id.
func (n *Node) ID() string { return n.id }

// GRPCAddr returns the address the node serves gRPC on.
func (n *Node) GRPCAddr() string { return n.addrs.GRPC }

// RaftAddr returns the node's Raft address.
func (n *Node) RaftAddr() string { return n.addrs.Raft }

// Region returns the region name once known.
func (n *Node) Region() string {
	if r := n.fsm.Region(); r != nil {
		return r.GetName()
	}
	return ""
}

// Membership exposes the node's gossip membership; nil without
// Config.Gossip.
func (n *Node) Membership() *membership.Membership {
	if n.gossip == nil {
		return nil
	}
	return n.gossip.members
}

// GossipLANAddr is the address region peers give as -retry-join seeds; ""
// without gossip.
func (n *Node) GossipLANAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.members.LANAddr()
}

// GossipWANAddr is the address nodes of other regions give as -wan-join
// seeds; "" without gossip.
func (n *Node) GossipWANAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.members.WANAddr()
}

// IsLeader reports whether the node leads its region.
func (n *Node) IsLeader() bool { return n.raft.IsLeader() }

// Raft exposes the Raft member for operators' and tests' use (snapshots,
// stats).
func (n *Node) Raft() *cluster.Node { return n.raft }

// HSM exposes the node's HSM backend.
func (n *Node) HSM() hsm.Backend { return n.hsm }

// State exposes the node's replicated state (read-only use).
func (n *Node) State() *fsm.FSM { return n.fsm }

// Close stops serving and releases everything in reverse order of start.
// A node is not reusable after Close; Start it again from its data dir.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	if n.gossip != nil {
		// First, so that the reaper and the admission loop stop using Raft.
		errs = append(errs, n.gossip.stop())
	}
	if n.grpc != nil {
		stopped := make(chan struct{})
		go func() { n.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			n.grpc.Stop()
		}
	} else if n.lis != nil {
		_ = n.lis.Close()
	}
	n.stopReplication()
	if n.server != nil {
		n.server.Close()
	}
	errs = append(errs, n.closeAuditLog())
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown())
	} else if n.raftTrans != nil {
		errs = append(errs, n.raftTrans.Close())
	}
	if n.hsm != nil {
		errs = append(errs, n.hsm.Close())
	}
	if n.tls != nil {
		n.tls.Close()
	}
	return errors.Join(errs...)
}

// listen binds preferred, falling back to fallback when the preferred
// (remembered) address is taken.
func listen(preferred, fallback string) (net.Listener, error) {
	lis, err := net.Listen("tcp", preferred)
	if err != nil && preferred != fallback {
		return net.Listen("tcp", fallback)
	}
	return lis, err
}

// retry runs op until it succeeds, fails for good, or ctx ends: start-up
// steps wait on other nodes.
func retry(ctx context.Context, log *slog.Logger, what string, op func() error) error {
	delay := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || errors.Is(err, transport.ErrJoinRefused) {
			return err
		}
		log.Warn(what+" failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

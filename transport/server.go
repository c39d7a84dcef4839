package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/internalpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

// Config wires a Server to the node's state, Raft and HSM.
type Config struct {
	NodeID  string
	Region  string // used until the replicated region record is known
	FSM     *fsm.FSM
	Cluster *cluster.Node
	HSM     hsm.Backend
	// JoinSecret admits joining nodes; empty refuses every join.
	JoinSecret []byte
	// PeerDial connects to other nodes (forwarding, read-index, join); see
	// PeerDialer for the mutual-TLS one.
	PeerDial PeerDialFunc
	Logger   *slog.Logger
	// Now is the clock commands are stamped with; nil means time.Now.
	Now func() time.Time
	// KeyCacheSize bounds the SOFTWARE backing keys held in memory.
	KeyCacheSize int
	// ProposeTimeout bounds a write, including forwarding and waiting out an
	// election.
	ProposeTimeout time.Duration
	// ReadRetry bounds how long a read waits for a leader during an
	// election before the node refuses to serve.
	ReadRetry time.Duration
	// LeaderTick is how often the leader looks for keys due for automatic
	// rotation or deletion.
	LeaderTick time.Duration
	// Audit receives one record per client request; required (see
	// AuditInterceptor).
	Audit *audit.Log
	// RateLimits throttle each principal's KMS requests; the zero value
	// limits nothing.
	RateLimits RateLimits
	// Gossip is the node's gossip membership, which Cluster.Status reports;
	// nil when the node runs without gossip.
	Gossip Gossip
	// MaxVoters caps the voters Join adds: past it a joiner is added as a
	// nonvoter. Zero adds every joiner as a voter.
	MaxVoters int
}

// Server implements the KMS, Cluster and Internal gRPC services of one node.
type Server struct {
	kmspb.UnimplementedKMSServer
	kmspb.UnimplementedClusterServer

	cfg      Config
	log      *slog.Logger
	fsm      *fsm.FSM
	raft     *cluster.Node
	hsm      hsm.Backend
	keys     *keyCache
	policies policyCache
	peers    *peerPool
	now      func() time.Time
	internal *internalService
	audit    *audit.Log
	limits   *rateLimiter // nil: no limits
	// replication receives other regions' shipments; nil until set.
	replication Replication
	// joinMu makes counting the voters and adding a joiner one step, so
	// concurrent joins cannot both take the last voter seat.
	joinMu sync.Mutex

	stopOnce sync.Once
	stop     chan struct{}
	done     sync.WaitGroup
}

// New builds a Server. Call Register to expose it and Start to run the
// leader's time-driven work.
func New(cfg Config) (*Server, error) {
	if cfg.FSM == nil || cfg.Cluster == nil || cfg.HSM == nil {
		return nil, errors.New("transport: FSM, Cluster and HSM are required")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("transport: NodeID is required")
	}
	if cfg.Audit == nil {
		return nil, errors.New("transport: Audit is required: every client request is audited")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.KeyCacheSize = defaulted(cfg.KeyCacheSize, 10000)
	cfg.ProposeTimeout = defaulted(cfg.ProposeTimeout, 10*time.Second)
	cfg.LeaderTick = defaulted(cfg.LeaderTick, time.Second)
	cfg.ReadRetry = defaulted(cfg.ReadRetry, 3*time.Second)
	// Buckets run on the real clock: Now may be a test clock that jumps.
	limits, err := newRateLimiter(cfg.RateLimits, time.Now)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Logger,
		fsm:   cfg.FSM,
		raft:  cfg.Cluster,
		hsm:   cfg.HSM,
		keys:  newKeyCache(cfg.KeyCacheSize),
		peers: newPeerPool(cfg.PeerDial),
		now:   cfg.Now,
		audit: cfg.Audit,
		stop:  make(chan struct{}),
	}
	s.internal = &internalService{s: s}
	s.limits = limits
	s.raft.SetReadIndexFetcher(s.fetchReadIndex)
	s.raft.SetAppliedWaiter(s.waitFollowerApplied)
	return s, nil
}

// Register adds the public and internal services to g.
func (s *Server) Register(g *grpc.Server) {
	kmspb.RegisterKMSServer(g, s)
	kmspb.RegisterClusterServer(g, s)
	internalpb.RegisterInternalServer(g, s.internal)
	replpb.RegisterReplicationServer(g, &replicationService{s: s})
}

// UnaryInterceptor converts handler errors to gRPC statuses in one place and
// turns a panic on a request path into an Internal error instead of a crash.
// It is the last interceptor of the chain; it serves a client request only if
// AuditInterceptor, the first, is auditing it.
func (s *Server) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("panic in handler", "method", info.FullMethod, "panic", fmt.Sprint(r))
				resp, err = nil, status.Error(codes.Internal, "KMSInternalException: internal error")
			}
		}()
		if err := s.requireAudited(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		// After requireAudited, so a throttled request is audited too.
		if err := s.throttle(ctx, info.FullMethod); err != nil {
			return nil, statusFor(err)
		}
		resp, err = handler(ctx, req)
		if err != nil {
			st := statusFor(err)
			if status.Code(st) == codes.Internal {
				s.log.Error("request failed", "method", info.FullMethod, "err", err)
			}
			return nil, st
		}
		return resp, nil
	}
}

// Start runs the leader's time-driven work until Close.
func (s *Server) Start() {
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		s.runLeaderWork()
	}()
}

// Close stops background work, drops cached key material and closes peer
// connections. It does not close the FSM, Raft node or HSM it was given.
func (s *Server) Close() {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.done.Wait()
		s.keys.purge()
		s.peers.close()
	})
}

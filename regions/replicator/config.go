package replicator

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/regions/replicator/replpb"
)

// Defaults of Config's timing.
const (
	DefaultInterval     = 20 * time.Millisecond
	DefaultShipTimeout  = 10 * time.Second
	DefaultReplayWindow = 10 * time.Minute
	DefaultMaxBackoff   = time.Second
	DefaultProbeEvery   = 10 * time.Second
	defaultMaxBatch     = 64
	// Concurrent shipments per destination: a change made while one is in
	// flight leaves at once instead of a round trip later.
	maxInFlight = 16
)

// Config wires a Replicator to its node.
type Config struct {
	NodeID string
	State  *fsm.FSM
	HSM    hsm.Backend
	// Propose applies a command through this region's Raft (forwarding it
	// to the leader if need be) and returns Apply's result; a rejected
	// command is returned as its error.
	Propose func(ctx context.Context, cmd *fsmpb.Command) (*fsm.Result, error)
	// IsLeader reports whether this node leads its region: only the leader
	// ships.
	IsLeader func() bool
	// Leadership, when set, first says whether this node leads, then every
	// change (cluster.Node.LeadershipChanges): Run then wakes only while
	// leading, instead of every Interval to ask IsLeader.
	Leadership <-chan bool
	// Locate lists gRPC addresses of nodes of a region, best first (its
	// leader); nil or empty when none is known.
	Locate func(region string) []string
	// Dial connects to a node of region at addr, authenticating it as a
	// node of that region (mutual TLS).
	Dial func(addr, region string) (*grpc.ClientConn, error)
	// WrapClient, if set, wraps each Replication client (fault injection:
	// latency, partitions).
	WrapClient func(region string, c replpb.ReplicationClient) replpb.ReplicationClient
	Logger     *slog.Logger
	// Now is the clock of batches and commands; nil means time.Now.
	Now func() time.Time

	// Interval is how often the leader looks for changes to ship.
	Interval time.Duration
	// ShipTimeout bounds one shipment.
	ShipTimeout time.Duration
	// ReplayWindow: a batch older than this, or seen before within it, is
	// refused.
	ReplayWindow time.Duration
	// MaxBackoff caps the wait before retrying a region after a failure; a
	// healed partition is caught up within it.
	MaxBackoff time.Duration
	// ProbeEvery is how often a primary asks a replica reported pending
	// deletion whether its key is gone yet.
	ProbeEvery time.Duration
	// MaxBatch bounds the keys in one shipment.
	MaxBatch int
}

func (c *Config) validate() error {
	if c.NodeID == "" || c.State == nil || c.HSM == nil || c.Propose == nil {
		return errors.New("replicator: NodeID, State, HSM and Propose are required")
	}
	if c.IsLeader == nil {
		c.IsLeader = func() bool { return false }
	}
	if c.Locate == nil {
		c.Locate = func(string) []string { return nil }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Interval = orDefault(c.Interval, DefaultInterval)
	c.ShipTimeout = orDefault(c.ShipTimeout, DefaultShipTimeout)
	c.ReplayWindow = orDefault(c.ReplayWindow, DefaultReplayWindow)
	c.MaxBackoff = orDefault(c.MaxBackoff, DefaultMaxBackoff)
	c.ProbeEvery = orDefault(c.ProbeEvery, DefaultProbeEvery)
	if c.MaxBatch <= 0 {
		c.MaxBatch = defaultMaxBatch
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

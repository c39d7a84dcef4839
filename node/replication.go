package node

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/regions/membership"
	"github.com/trent-kms/trent/regions/replicator"
	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport"
)

// ReplicationConfig tunes the replication of multi-region keys between
// regions. The zero value takes regions/replicator's defaults. Other
// regions are found through the WAN gossip pool, so a node replicates only
// with Config.Gossip set.
type ReplicationConfig struct {
	// Interval is how often the leader looks for changes to ship.
	Interval time.Duration
	// MaxBackoff caps the retry delay for an unreachable region.
	MaxBackoff time.Duration
	// ProbeEvery is how often a primary asks a replica pending deletion
	// whether its key is gone.
	ProbeEvery time.Duration
	// WrapClient, if set, wraps each client of another region's Replication
	// service (fault injection in tests: latency, partitions).
	WrapClient func(region string, c replpb.ReplicationClient) replpb.ReplicationClient
}

// replication runs the node's replicator: receiving always, shipping while
// the node leads.
type replication struct {
	rep    *replicator.Replicator
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func (n *Node) startReplication(cfg Config) error {
	var locate func(string) []string
	if n.gossip != nil {
		locate = regionNodes(n.gossip.members)
	}
	rep, err := replicator.New(replicator.Config{
		NodeID:     n.id,
		State:      n.fsm,
		HSM:        n.hsm,
		Propose:    n.server.Propose,
		IsLeader:   n.raft.IsLeader,
		Leadership: n.raft.LeadershipChanges(),
		Locate:     locate,
		Dial: func(addr, region string) (*grpc.ClientConn, error) {
			return transport.PeerDialer(n.tls, region)(addr)
		},
		WrapClient: cfg.Replication.WrapClient,
		Logger:     n.log.With("component", "replicator"),
		Now:        cfg.Now,
		Interval:   cfg.Replication.Interval,
		MaxBackoff: cfg.Replication.MaxBackoff,
		ProbeEvery: cfg.Replication.ProbeEvery,
	})
	if err != nil {
		return err
	}
	n.server.SetReplication(rep)
	n.repl = &replication{rep: rep}
	return nil
}

// runReplication starts shipping once the node serves.
func (n *Node) runReplication() {
	ctx, cancel := context.WithCancel(context.Background())
	n.repl.cancel = cancel
	n.repl.done.Add(1)
	go func() {
		defer n.repl.done.Done()
		n.repl.rep.Run(ctx)
	}()
}

func (n *Node) stopReplication() {
	if n.repl == nil {
		return
	}
	if n.repl.cancel != nil {
		n.repl.cancel()
	}
	n.repl.done.Wait()
	n.repl.rep.Close()
}

// Replication reports the destinations this node's replicator ships to.
func (n *Node) Replication() []replicator.DestinationStatus {
	if n.repl == nil {
		return nil
	}
	return n.repl.rep.Status()
}

// regionNodes lists a region's nodes from the WAN pool: the one announcing
// leadership first (it applies without forwarding), then the others alive.
func regionNodes(m *membership.Membership) func(string) []string {
	return func(region string) []string {
		var addrs []string
		leader, ok := m.RegionLeaders()[region]
		if ok && leader.GRPCAddr != "" {
			addrs = append(addrs, leader.GRPCAddr)
		}
		for _, mem := range m.WANMembers() {
			if mem.Region != region || mem.GRPCAddr == "" || (ok && mem.ID == leader.ID) {
				continue
			}
			if mem.Status == membership.StatusAlive || mem.Status == membership.StatusSuspect {
				addrs = append(addrs, mem.GRPCAddr)
			}
		}
		return addrs
	}
}

package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/regions/replicator/replpb"
)

// Replicator is one node's replication: Run ships this region's changes
// while the node leads; Hello and Ship receive other regions' shipments.
type Replicator struct {
	cfg    Config
	log    *slog.Logger
	replay *replayGuard

	mu      sync.Mutex
	dests   map[string]*destination
	peers   map[string]*peer // by address
	pinning sync.Mutex       // one PinPeerRegion proposal at a time
}

// peer is one node of another region this node has talked to.
type peer struct {
	conn   *grpc.ClientConn
	client replpb.ReplicationClient
	hello  *replpb.HelloResponse // nil until Hello succeeded
}

// New builds a Replicator; Run starts shipping.
func New(cfg Config) (*Replicator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Replicator{
		cfg:    cfg,
		log:    cfg.Logger,
		replay: newReplayGuard(cfg.ReplayWindow),
		dests:  make(map[string]*destination),
		peers:  make(map[string]*peer),
	}, nil
}

// Run ships changes, while this node leads its region, until ctx ends. With
// Config.Leadership a follower's Run sleeps until it leads: an idle node
// wakes for nothing.
func (r *Replicator) Run(ctx context.Context) {
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	leadership := r.cfg.Leadership
	if leadership != nil {
		ticker.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case leading, ok := <-leadership:
			switch {
			case !ok: // the node is shutting down
				leadership = nil
				ticker.Stop()
			case leading:
				ticker.Reset(r.cfg.Interval)
			default:
				ticker.Stop()
			}
			continue
		case <-ticker.C:
		}
		if r.cfg.IsLeader() {
			r.tick(ctx, &wg)
		}
	}
}

// Close releases connections to other regions.
func (r *Replicator) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, p := range r.peers {
		_ = p.conn.Close()
		delete(r.peers, addr)
	}
}

// tick starts a shipment to every region with work that is not backing off
// and has a free in-flight slot.
func (r *Replicator) tick(ctx context.Context, wg *sync.WaitGroup) {
	region := r.cfg.State.Region()
	if region == nil {
		return
	}
	keys := r.cfg.State.MultiRegionKeysToShip("")
	if len(keys) == 0 {
		return
	}
	if len(region.GetSigningKeyToken()) == 0 {
		if err := r.ensureSigningKey(ctx, region); err != nil {
			r.log.Warn("replication: no signing key yet", "err", err)
		}
		return
	}
	here := region.GetName()
	now := r.cfg.Now()
	byDest := make(map[string][]*fsmpb.Key)
	for _, k := range keys {
		for _, dest := range fsm.ShipTargets(k, here) {
			byDest[dest] = append(byDest[dest], k)
		}
	}
	for name, ks := range byDest {
		d := r.destination(name)
		work := d.claim(ks, here, now, r.cfg.ProbeEvery, r.cfg.MaxBatch)
		if len(work) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.ship(ctx, d, work)
		}()
	}
}

func (r *Replicator) destination(name string) *destination {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.dests[name]
	if !ok {
		d = newDestination(name)
		r.dests[name] = d
	}
	return d
}

// ensureSigningKey makes the region's signing key inside the HSM, under
// the active domain key, and proposes it; the first one applied wins.
func (r *Replicator) ensureSigningKey(ctx context.Context, region *fsmpb.Region) error {
	dk := region.GetActiveDomainKeyId()
	token, pub, err := r.cfg.HSM.GenerateSigningKeyToken(ctx, dk)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	_, err = r.cfg.Propose(ctx, &fsmpb.Command{
		Principal: systemPrincipal,
		Op: &fsmpb.Command_SetRegionSigningKey{SetRegionSigningKey: &fsmpb.SetRegionSigningKey{
			Token: token, DomainKeyId: dk, PublicKey: pub,
		}},
	})
	return err
}

// systemPrincipal proposes the replicator's own commands.
const systemPrincipal = "trent:replicator"

// Status reports each destination region as this node's replicator sees
// it; empty on a node that never shipped.
func (r *Replicator) Status() []DestinationStatus {
	r.mu.Lock()
	dests := make([]*destination, 0, len(r.dests))
	for _, d := range r.dests {
		dests = append(dests, d)
	}
	r.mu.Unlock()
	out := make([]DestinationStatus, 0, len(dests))
	for _, d := range dests {
		out = append(out, d.status())
	}
	sortStatus(out)
	return out
}

package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
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
	// signingRetry paces attempts to make the region's signing key; Run's
	// goroutine only.
	signingRetry retryPacer

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
// Config.Leadership a follower's Run sleeps until it leads, and a leader with
// nothing to ship sleeps until the state changes: an idle node wakes for
// nothing.
func (r *Replicator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
	leadership := r.cfg.Leadership
	if leadership != nil {
		ticker.Stop() // until the channel says this node leads
	}
	follow := func(leading, ok bool) {
		if !ok { // the node is shutting down
			leadership = nil
		}
		if ok && leading {
			ticker.Reset(r.cfg.Interval)
		} else {
			ticker.Stop()
		}
	}
	tickNow := false // tick without waiting for the ticker
	var last time.Time
	for {
		if !tickNow {
			select {
			case <-ctx.Done():
				return
			case leading, ok := <-leadership:
				follow(leading, ok)
				continue
			case <-ticker.C:
			}
		}
		tickNow = false
		if !r.cfg.IsLeader() {
			continue
		}
		applied := r.cfg.State.AppliedIndex()
		last = time.Now()
		if r.tick(ctx, &wg) {
			continue
		}
		// Nothing to ship. Whatever makes work (a key made multi-region, a
		// rotation, a replica added, an ack) is applied to the state first,
		// so sleep until the state moves past what this tick saw.
		ticker.Stop()
		moved, leading, ok := r.sleepUntilApplied(ctx, applied+1, leadership)
		switch {
		case ctx.Err() != nil:
			return
		case moved:
			// At most one tick per Interval still: under a stream of
			// unrelated writes this wakes as often as the ticker did.
			ticker.Reset(r.cfg.Interval)
			tickNow = time.Since(last) >= r.cfg.Interval
		default:
			follow(leading, ok)
		}
	}
}

// sleepUntilApplied waits until the state has applied index (moved), ctx
// ends, or a value arrives on leadership (leading, ok as received).
func (r *Replicator) sleepUntilApplied(ctx context.Context, index uint64, leadership <-chan bool) (moved, leading, ok bool) {
	wctx, cancel := context.WithCancel(ctx)
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		_ = r.cfg.State.WaitApplied(wctx, index)
	}()
	defer func() {
		cancel()
		<-applied
	}()
	select {
	case <-applied:
		return wctx.Err() == nil, false, false
	case <-ctx.Done():
		return false, false, false
	case leading, ok = <-leadership:
		return false, leading, ok
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
// and has a free in-flight slot. It reports whether any key has work.
func (r *Replicator) tick(ctx context.Context, wg *sync.WaitGroup) bool {
	region := r.cfg.State.Region()
	if region == nil {
		return false
	}
	keys := r.cfg.State.MultiRegionKeysToShip("")
	here := region.GetName()
	byDest := make(map[string][]*fsmpb.Key)
	for _, k := range keys {
		for _, dest := range fsm.ShipTargets(k, here) {
			byDest[dest] = append(byDest[dest], k)
		}
	}
	r.forgetFinished(byDest)
	if len(keys) == 0 {
		return false
	}
	if len(region.GetSigningKeyToken()) == 0 {
		now := r.cfg.Now()
		if !r.signingRetry.ready(now) {
			return true
		}
		if err := r.ensureSigningKey(ctx, region); err != nil {
			wait := r.signingRetry.failed(now, r.cfg.MaxBackoff)
			r.log.Warn("replication: no signing key yet", "err", err, "retry_in", wait)
		} else {
			r.signingRetry.succeeded()
		}
		return true
	}
	now := r.cfg.Now()
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
	return true
}

// forgetFinished drops every destination's marks for keys without work
// for it; byDest lists the keys with work by destination.
func (r *Replicator) forgetFinished(byDest map[string][]*fsmpb.Key) {
	r.mu.Lock()
	dests := slices.Collect(maps.Values(r.dests))
	r.mu.Unlock()
	for _, d := range dests {
		d.forget(byDest[d.name])
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

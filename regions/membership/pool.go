package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// TombstoneRetention is how long a dead or departed member stays listed. A Reaper's
// CleanupPolicy.After must be shorter, or the members it should remove are forgotten first.
const TombstoneRetention = 72 * time.Hour

// updateAttempts bounds how often a dropped metadata update is re-announced.
const updateAttempts = 3

// pool is one memberlist instance and this node's table of its members. memberlist's own node
// list cannot be read without racing its writers, so the table is built from its delegates.
//
// Lock order: memberlist calls the event and alive delegates while holding its node lock, and
// they take p.mu; so nothing may call into memberlist while holding p.mu.
type pool struct {
	kind Pool
	m    *Membership
	name string // this node's name in the pool
	log  *slog.Logger

	list          *memberlist.Memberlist
	addr          string
	probeInterval time.Duration
	probeTimeout  time.Duration
	updateTimeout time.Duration

	// refused counts alive messages and merges turned away: a steady rise means a
	// misconfigured node keeps knocking.
	refused atomic.Uint64

	mu      sync.Mutex
	members map[string]*entry // by memberlist node name
}

type entry struct {
	member Member
	meta   nodeMeta
	heard  time.Time // last sign of life: joined, changed metadata or acknowledged our probe
}

func lanName(id string) string         { return id }
func wanName(region, id string) string { return region + "/" + id }
func (p *pool) nameOf(m nodeMeta) string {
	if p.kind == LAN {
		return lanName(m.ID)
	}
	return wanName(m.Region, m.ID)
}

func (m *Membership) startPool(kind Pool, name, bind, advertise string, keys [][]byte) (*pool, error) {
	p := &pool{kind: kind, m: m, name: name, members: map[string]*entry{}, log: m.log.With("pool", kind.String())}
	c := m.cfg.Profile.timing(kind)
	c.Name = name
	c.BindAddr, c.BindPort, _ = splitIPPort(bind, true)
	c.AdvertiseAddr, c.AdvertisePort = "", c.BindPort
	if advertise != "" {
		c.AdvertiseAddr, c.AdvertisePort, _ = splitIPPort(advertise, false)
	}
	// memberlist keeps the slices it is given; copies keep a caller that wipes or reuses its
	// buffers from changing the keyring underneath.
	keys = slices.Clone(keys)
	for i := range keys {
		keys[i] = slices.Clone(keys[i])
	}
	keyring, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("membership: %s keyring: %w", kind, err)
	}
	c.Keyring = keyring
	c.GossipVerifyIncoming, c.GossipVerifyOutgoing = true, true
	// The label is authenticated with every packet, so a LAN address given as a WAN seed (or
	// the reverse) is refused at the first exchange instead of merging the two pools.
	c.Label = "trent-" + kind.String()
	c.Delegate, c.Events, c.Alive, c.Merge, c.Ping, c.Conflict = p, p, p, p, p, p
	c.Logger = newStdLogger(p.log)
	p.probeInterval, p.probeTimeout = c.ProbeInterval, c.ProbeTimeout
	// A metadata broadcast is confirmed after a few gossip rounds; twenty leave room for a
	// loaded node without stalling SetLeader for long when an update was dropped (see update).
	p.updateTimeout = min(max(20*c.GossipInterval, 500*time.Millisecond), 10*time.Second)

	list, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("membership: start %s pool: %w", kind, err)
	}
	p.list = list
	p.addr = list.LocalNode().Address()
	return p, nil
}

// update re-announces this node's metadata until memberlist has applied want. memberlist
// (v0.5.4) drops an update outright when a refutation of a suspicion takes the incarnation
// number it had just picked; the update then never spreads, and UpdateNode waits its full
// timeout for a broadcast that was never queued. memberlist reports our own metadata changes to
// the event delegate like anyone else's, so the table says whether the update took. Once it has,
// the broadcast is queued and spreads whether or not memberlist confirmed it in time.
func (p *pool) update(want nodeMeta) error {
	var err error
	for range updateAttempts {
		err = p.list.UpdateNode(p.updateTimeout)
		if p.applied(want) {
			return nil
		}
	}
	if err == nil {
		err = errors.New("superseded")
	}
	return fmt.Errorf("%w: %s pool: %w", ErrUpdateDropped, p.kind, err)
}

// pushState hands this node's state to every live peer over TCP (memberlist's join exchange),
// waiting until deadline at most. Gossip is UDP and fire-and-forget: a peer that missed the
// leaving flag but heard the leave message would list this node as dead.
func (p *pool) pushState(deadline time.Time) {
	p.mu.Lock()
	var peers []string
	for name, e := range p.members {
		if name != p.name && !e.member.Status.failed() {
			peers = append(peers, e.member.GossipAddr)
		}
	}
	p.mu.Unlock()
	if len(peers) == 0 {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := p.list.Join(peers); err != nil {
			p.log.Debug("state push before leaving failed", "err", err)
		}
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

func (p *pool) applied(want nodeMeta) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.members[p.name]
	return e != nil && e.meta == want
}

// check decides whether a peer may be part of this pool. In a LAN pool only this node's region
// is admitted: the pool feeds discovery and auto-join of one Raft group.
func (p *pool) check(n *memberlist.Node) (nodeMeta, error) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		return meta, fmt.Errorf("node %q: %w", n.Name, err)
	}
	if p.kind == LAN && meta.Region != p.m.cfg.Region {
		return meta, fmt.Errorf("node %q in region %q, this pool is %q: %w", n.Name, meta.Region, p.m.cfg.Region, errForeignRegion)
	}
	// A name that disagrees with the metadata would let a node speak for another's id.
	if name := p.nameOf(meta); name != n.Name {
		return meta, fmt.Errorf("node %q announces itself as %q: %w", n.Name, name, errBadMeta)
	}
	return meta, nil
}

// NotifyAlive implements memberlist.AliveDelegate: it filters every alive message, including
// the ones passed along by third nodes, so a refused node cannot slip in through gossip.
func (p *pool) NotifyAlive(n *memberlist.Node) error {
	if _, err := p.check(n); err != nil {
		p.refused.Add(1)
		p.log.Debug("refused alive message", "err", err)
		return err
	}
	return nil
}

// NotifyMerge implements memberlist.MergeDelegate: a join that would bring in one foreign or
// malformed node is cancelled as a whole, and the joiner sees an error.
func (p *pool) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if _, err := p.check(n); err != nil {
			p.refused.Add(1)
			p.log.Warn("refused to merge with a foreign pool", "err", err)
			return err
		}
	}
	return nil
}

// NotifyConflict implements memberlist.ConflictDelegate.
func (p *pool) NotifyConflict(existing, other *memberlist.Node) {
	p.log.Warn("two nodes claim one name", "name", existing.Name, "existing", existing.Address(), "other", other.Address())
}

// NodeMeta implements memberlist.Delegate.
func (p *pool) NodeMeta(int) []byte { return p.m.currentMeta().encode() }

// The rest of memberlist.Delegate: this package gossips nothing but membership.
func (p *pool) NotifyMsg([]byte)                    {}
func (p *pool) GetBroadcasts(int, int) [][]byte     { return nil }
func (p *pool) LocalState(bool) []byte              { return nil }
func (p *pool) MergeRemoteState(buf []byte, _ bool) {}

// AckPayload and NotifyPingComplete implement memberlist.PingDelegate: an ack to our own probe
// is the only liveness signal memberlist hands out, and it drives StatusSuspect.
func (p *pool) AckPayload() []byte { return nil }

func (p *pool) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	now := p.m.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.members[n.Name]; e != nil && !e.member.Status.failed() {
		e.heard = now
	}
}

// NotifyJoin, NotifyUpdate and NotifyLeave implement memberlist.EventDelegate.
func (p *pool) NotifyJoin(n *memberlist.Node)   { p.record(EventJoin, n) }
func (p *pool) NotifyUpdate(n *memberlist.Node) { p.record(EventUpdate, n) }
func (p *pool) NotifyLeave(n *memberlist.Node)  { p.record(EventLeave, n) }

func (p *pool) record(t EventType, n *memberlist.Node) {
	meta, err := p.check(n)
	if err != nil {
		// NotifyAlive let only valid nodes in, so this is a node already known whose
		// metadata is now refused: keep its last valid record.
		p.log.Debug("ignored event", "event", t, "err", err)
		return
	}
	now := p.m.now()
	status := StatusAlive
	switch {
	case t == EventLeave && meta.Leaving:
		status = StatusLeft
	case t == EventLeave:
		status = StatusDead
	}
	member := Member{
		ID:         meta.ID,
		Region:     meta.Region,
		Role:       meta.Role,
		GRPCAddr:   meta.GRPCAddr,
		RaftAddr:   meta.RaftAddr,
		Leader:     meta.Leader,
		GossipAddr: n.Address(),
		WANAddr:    meta.WANAddr,
		Status:     status,
		LastChange: now,
	}
	p.mu.Lock()
	p.members[n.Name] = &entry{member: member, meta: meta, heard: now}
	p.prune(now)
	p.mu.Unlock()
	p.m.events.push(Event{Type: t, Pool: p.kind, Member: member})
}

// prune forgets members gone for longer than TombstoneRetention. Called with p.mu held.
func (p *pool) prune(now time.Time) {
	for name, e := range p.members {
		if e.member.Status.failed() && now.Sub(e.member.LastChange) > TombstoneRetention {
			delete(p.members, name)
		}
	}
}

func (p *pool) snapshot() []Member {
	now := p.m.now()
	// memberlist stretches its probe interval while this node is unhealthy (overloaded); the
	// score is read before taking p.mu, see the lock order above.
	tick := p.probeInterval * time.Duration(1+p.list.GetHealthScore())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prune(now)
	alive := 0
	for _, e := range p.members {
		if !e.member.Status.failed() {
			alive++
		}
	}
	// memberlist probes one member per tick in a shuffled round, so two probes of one member
	// can be almost two rounds apart; three rounds without an ack make a member suspect.
	window := 3*time.Duration(alive)*tick + p.probeTimeout
	out := make([]Member, 0, len(p.members))
	for name, e := range p.members {
		member := e.member
		if name != p.name && !member.Status.failed() && now.Sub(e.heard) > window {
			member.Status = StatusSuspect
			if since := e.heard.Add(window); since.After(member.LastChange) {
				member.LastChange = since
			}
		}
		out = append(out, member)
	}
	slices.SortFunc(out, func(a, b Member) int {
		if c := strings.Compare(a.Region, b.Region); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trent-kms/trent/cluster"
)

// Membership is one node's place in its region's LAN pool and in the WAN pool.
type Membership struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	metaMu sync.Mutex
	meta   nodeMeta

	// updateMu serialises SetLeader so that peers see leadership changes in call order.
	updateMu sync.Mutex

	lan, wan *pool
	events   *eventQueue // nil without Config.OnEvent

	closed       atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
}

// Start binds both pools and returns; it joins nobody. Call JoinLAN and JoinWAN (or RetryJoin)
// with seeds next. ctx only bounds Start itself.
func Start(ctx context.Context, cfg Config) (_ *Membership, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	m := &Membership{
		cfg:  cfg,
		log:  cfg.Logger.With("node", cfg.NodeID, "region", cfg.Region),
		now:  cfg.now,
		meta: cfg.meta(),
	}
	if cfg.OnEvent != nil {
		m.events = newEventQueue(cfg.OnEvent)
	}
	defer func() {
		if err != nil {
			_ = m.Shutdown()
		}
	}()
	wanKeys := cfg.WANKeys
	if len(wanKeys) == 0 {
		wanKeys = cfg.Keys
	}
	// The WAN pool starts first: its address, known only once it is bound, goes into the
	// metadata the LAN pool announces from its first message on.
	if m.wan, err = m.startPool(WAN, wanName(cfg.Region, cfg.NodeID), cfg.WANBind, cfg.WANAdvertise, wanKeys); err != nil {
		return nil, err
	}
	m.metaMu.Lock()
	m.meta.WANAddr = m.wan.addr
	size := len(m.meta.encode())
	m.metaMu.Unlock()
	if size > maxMetaSize {
		return nil, fmt.Errorf("%w: node metadata is %d bytes, limit %d", ErrInvalidConfig, size, maxMetaSize)
	}
	if m.lan, err = m.startPool(LAN, lanName(cfg.NodeID), cfg.LANBind, cfg.LANAdvertise, cfg.Keys); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.log.Debug("gossip started", "lan", m.lan.addr, "wan", m.wan.addr)
	return m, nil
}

// NodeID is this node's id.
func (m *Membership) NodeID() string { return m.cfg.NodeID }

// Region is this node's region.
func (m *Membership) Region() string { return m.cfg.Region }

// LANAddr is the host:port this node's LAN pool advertises; give it to region peers as a seed.
func (m *Membership) LANAddr() string { return m.lan.addr }

// WANAddr is the host:port this node's WAN pool advertises; give it to other regions as a seed.
func (m *Membership) WANAddr() string { return m.wan.addr }

// JoinLAN joins the region's pool through any of seeds (LAN addresses of region peers) and
// returns how many seeds answered. One is enough: gossip brings in the rest of the region. It
// fails with ErrJoin when none could be joined, including when every seed is in another region.
func (m *Membership) JoinLAN(seeds []string) (int, error) { return m.join(m.lan, seeds) }

// JoinWAN joins the pool of all regions through any of seeds (WAN addresses), like JoinLAN.
func (m *Membership) JoinWAN(seeds []string) (int, error) { return m.join(m.wan, seeds) }

func (m *Membership) join(p *pool, seeds []string) (int, error) {
	if m.closed.Load() {
		return 0, ErrShutdown
	}
	if len(seeds) == 0 {
		return 0, fmt.Errorf("%w: %s: no seeds", ErrJoin, p.kind)
	}
	n, err := p.list.Join(seeds)
	if n == 0 {
		if err == nil {
			err = errors.New("no seed answered")
		}
		return 0, fmt.Errorf("%w: %s: %w", ErrJoin, p.kind, err)
	}
	return n, nil
}

// JoinRegionPeersWAN joins the WAN pool through the WAN addresses of the alive LAN members
// that the WAN pool does not list as alive, and returns how many answered (0 and no error when
// none is missing). A region's nodes thereby share one WAN pool however many of them were given WAN
// seeds: one seed anywhere links the region to the others. Call it periodically; memberlist
// merges what a join brings in, so a call that finds nothing missing costs nothing.
func (m *Membership) JoinRegionPeersWAN() (int, error) {
	if m.closed.Load() {
		return 0, ErrShutdown
	}
	inWAN := make(map[string]bool)
	for _, mem := range m.wan.snapshot() {
		if mem.Region == m.cfg.Region && !mem.Status.failed() {
			inWAN[mem.ID] = true
		}
	}
	var seeds []string
	for _, mem := range m.lan.snapshot() {
		if !inWAN[mem.ID] && !mem.Status.failed() && mem.WANAddr != "" {
			seeds = append(seeds, mem.WANAddr)
		}
	}
	if len(seeds) == 0 {
		return 0, nil
	}
	return m.join(m.wan, seeds)
}

// LANMembers lists the region's members, this node included, sorted by id. Members that died or
// left stay listed for TombstoneRetention, so the Reaper can see how long they have been gone.
func (m *Membership) LANMembers() []Member { return m.lan.snapshot() }

// WANMembers lists the members of all regions, this node included, sorted by region and id.
func (m *Membership) WANMembers() []Member { return m.wan.snapshot() }

// RegionLeaders maps each region to the member that announces leading it, from the WAN pool.
// Dead and departed members are skipped. During a handover two members of one region may both
// claim it for a moment; the claim this node saw last wins.
func (m *Membership) RegionLeaders() map[string]Member {
	leaders := make(map[string]Member)
	for _, mem := range m.wan.snapshot() {
		if !mem.Leader || mem.Status.failed() {
			continue
		}
		if cur, ok := leaders[mem.Region]; ok && cur.LastChange.After(mem.LastChange) {
			continue
		}
		leaders[mem.Region] = mem
	}
	return leaders
}

// SetLeader announces, in both pools, whether this node leads its region's Raft group. Call it
// from the leadership observer. It returns once the change is under way in both pools, usually
// after a few gossip rounds, or with ErrUpdateDropped.
func (m *Membership) SetLeader(leader bool) error {
	return m.setMeta(func(meta *nodeMeta) { meta.Leader = leader })
}

// SetRole announces, in both pools, whether this node votes in its region's Raft group. A node
// learns its suffrage only once a leader has added it (past the region's voter count it joins
// as a nonvoter, and a nonvoter may be promoted later), so it starts with Config.Role and
// corrects it from its Raft configuration. It returns like SetLeader.
func (m *Membership) SetRole(role cluster.Suffrage) error {
	if role != cluster.Voter && role != cluster.Nonvoter {
		return fmt.Errorf("%w: unknown role %d", ErrInvalidConfig, role)
	}
	return m.setMeta(func(meta *nodeMeta) { meta.Role = role })
}

// setMeta applies change to this node's metadata and announces the result if it differs.
func (m *Membership) setMeta(change func(*nodeMeta)) error {
	if m.closed.Load() {
		return ErrShutdown
	}
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.metaMu.Lock()
	before := m.meta
	change(&m.meta)
	want := m.meta
	m.metaMu.Unlock()
	if want == before {
		return nil
	}
	return m.eachPool(func(p *pool) error { return p.update(want) })
}

// Role is the role this node announces.
func (m *Membership) Role() cluster.Suffrage { return m.currentMeta().Role }

func (m *Membership) currentMeta() nodeMeta {
	m.metaMu.Lock()
	defer m.metaMu.Unlock()
	return m.meta
}

// Leave tells both pools this node is leaving on purpose, so peers list it as left rather than
// dead. memberlist does not tell peers which of the two it was, so a leaving flag goes out in the
// metadata first (a few gossip rounds); then memberlist's leave message, waiting up to timeout
// from the start of the call for it to spread. Call Shutdown afterwards.
func (m *Membership) Leave(timeout time.Duration) error {
	if m.closed.Load() {
		return ErrShutdown
	}
	deadline := time.Now().Add(timeout)
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.metaMu.Lock()
	m.meta.Leaving = true
	want := m.meta
	m.metaMu.Unlock()
	return m.eachPool(func(p *pool) error {
		if err := p.update(want); err != nil {
			// Peers will list this node as dead instead of left; leave anyway.
			p.log.Warn("leaving flag not announced", "err", err)
		}
		p.pushState(deadline)
		// memberlist reads a zero timeout as no timeout at all.
		left := max(time.Until(deadline), time.Millisecond)
		if err := p.list.Leave(left); err != nil {
			return fmt.Errorf("membership: leave %s pool: %w", p.kind, err)
		}
		return nil
	})
}

// eachPool runs f on both pools at once and joins their errors.
func (m *Membership) eachPool(f func(*pool) error) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*pool{m.lan, m.wan} {
		wg.Go(func() { errs[i] = f(p) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Shutdown stops gossip at once, without leaving: peers will declare this node dead. It is
// idempotent. Undelivered events are dropped; OnEvent must not call Shutdown.
func (m *Membership) Shutdown() error {
	m.shutdownOnce.Do(func() {
		m.closed.Store(true)
		var errs []error
		for _, p := range []*pool{m.lan, m.wan} {
			if p != nil {
				if err := p.list.Shutdown(); err != nil {
					errs = append(errs, fmt.Errorf("membership: shut down %s pool: %w", p.kind, err))
				}
			}
		}
		m.events.close()
		m.shutdownErr = errors.Join(errs...)
	})
	return m.shutdownErr
}

package node

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/regions/membership"
	"github.com/trent-kms/trent/transport"
)

// Gossip defaults (kmsd documents them).
const (
	// DefaultGossipLANPort is the LAN pool's port when only its host is implied; the WAN pool
	// takes the next one.
	DefaultGossipLANPort = 7422
	// DefaultVoters: a region of 3 or 5 voters (DESIGN.md) keeps its quorum through one or two
	// failures; more voters only slow every commit down.
	DefaultVoters = 5
	// DefaultDeadServerCleanupAfter is how long a server must have been failed before the leader
	// removes it: longer than a process restart, so routine restarts and upgrades never trigger
	// it, and three times Consul autopilot's server stabilization time, the time below.
	DefaultDeadServerCleanupAfter = 30 * time.Second
	// DefaultServerStabilization is how long a nonvoter must have been alive before the leader
	// promotes it to a free voter seat (Consul autopilot's ServerStabilizationTime): a node
	// that is flapping must not become one of the voters a quorum counts on.
	DefaultServerStabilization = 10 * time.Second
	// DefaultGossipRetryInterval is how often a gossip join that reached no seed is retried.
	DefaultGossipRetryInterval = time.Second

	gossipKeyFile = "gossip-key"
	// joinAttemptTimeout bounds an auto-join attempt through a member that does not announce
	// leading, so one that cannot help (a joiner itself, a node cut off from its leader) does
	// not hold up the next.
	joinAttemptTimeout = 10 * time.Second
	// admitTimeout bounds one promotion or re-admission, so a leader that lost its quorum
	// goes back to announcing and reaping.
	admitTimeout = 10 * time.Second
	// maxGossipTick bounds the period of the gossip loop (leader flag, role, WAN peers,
	// promotions) when DeadServerCleanupAfter is long.
	maxGossipTick = 2 * time.Second
)

// GossipConfig turns on gossip membership (regions/membership): a LAN pool of the region's
// nodes, through which a node with only a seed address finds and joins its region; a WAN pool of
// every region's nodes, which tells where each region's leader is; and, on the leader,
// dead-server cleanup and promotion of nonvoters. Zero values take the defaults above.
type GossipConfig struct {
	// LANBind is the IP:port of the region's pool (TCP and UDP). Default: the gRPC address's
	// host with DefaultGossipLANPort, or port 0 when the gRPC port is 0. Port 0 picks a free
	// port and keeps it across restarts.
	LANBind string
	// WANBind is the IP:port of the pool of all regions. Default: LANBind's host with the next
	// port (port 0 stays 0).
	WANBind string
	// LANAdvertise and WANAdvertise are the IP:port peers should dial instead (NAT, or a
	// wildcard bind).
	LANAdvertise string
	WANAdvertise string

	// KeyFile holds the gossip keyring: one base64-encoded 32-byte key per line, the first one
	// encrypts, all of them decrypt; blank lines and lines starting with # are skipped. Default
	// DataDir/gossip-key, created (mode 0600) when missing by a node bootstrapping a new region
	// and in dev mode. Every node of every region needs the same keys.
	KeyFile string

	// RetryJoin lists LAN pool addresses (host:port) of region peers. A node with no Raft state
	// that neither bootstraps nor names Join joins its region through them: it joins the LAN
	// pool, then asks a member (the leader if one announces itself) to admit it, with the join
	// secret. Nodes with state join the pool through them in the background.
	RetryJoin []string
	// WANJoin lists WAN pool addresses of nodes of any region. One is enough for a whole region:
	// region peers join each other's WAN pools through the LAN pool.
	WANJoin []string

	// Voters is the most voters the leader admits: past it a joining node becomes a nonvoter,
	// and a nonvoter is promoted when a voter seat frees up. Set it alike on every node.
	Voters int
	// DeadServerCleanupAfter is how long a server must have been failed, as gossip sees it,
	// before the leader removes it from the Raft configuration, which it does only while the
	// healthy voters stay a quorum (membership.CleanupPolicy).
	DeadServerCleanupAfter time.Duration
	// ServerStabilization is how long a nonvoter must have been alive before it is promoted.
	ServerStabilization time.Duration
	// RetryInterval is how often a gossip join that reached no seed is retried.
	RetryInterval time.Duration
	// Profile is the gossip timing; tests use membership.ProfileFast.
	Profile membership.Profile
}

// validateGossip applies the gossip defaults to a copy of c.Gossip, so that a config reused
// across restarts keeps what its caller set.
func (c *Config) validateGossip() error {
	if c.Gossip == nil {
		return nil
	}
	g := *c.Gossip
	g.RetryJoin, g.WANJoin = slices.Clone(g.RetryJoin), slices.Clone(g.WANJoin)
	c.Gossip = &g
	if g.LANBind == "" {
		host, port, err := net.SplitHostPort(c.GRPCAddr)
		if err != nil {
			return fmt.Errorf("gossip: LAN address from the gRPC address: %w", err)
		}
		if host == "localhost" {
			host = "127.0.0.1"
		}
		if host != "" && net.ParseIP(host) == nil {
			return fmt.Errorf("gossip: the gRPC host %q is not an IP address; give the LAN gossip address (-gossip-lan IP:PORT)", host)
		}
		p := strconv.Itoa(DefaultGossipLANPort)
		if port == "0" {
			p = "0"
		}
		g.LANBind = net.JoinHostPort(host, p)
	}
	lanHost, lanPort, err := splitGossipAddr(g.LANBind)
	if err != nil {
		return fmt.Errorf("gossip: LAN address %q: %w", g.LANBind, err)
	}
	if g.WANBind == "" {
		port := 0
		if lanPort != 0 {
			port = lanPort + 1
		}
		g.WANBind = net.JoinHostPort(lanHost, strconv.Itoa(port))
	}
	if _, _, err := splitGossipAddr(g.WANBind); err != nil {
		return fmt.Errorf("gossip: WAN address %q: %w", g.WANBind, err)
	}
	if g.KeyFile == "" {
		g.KeyFile = filepath.Join(c.DataDir, gossipKeyFile)
	}
	switch {
	case g.Voters < 0:
		return fmt.Errorf("gossip: voters %d: must be positive", g.Voters)
	case g.DeadServerCleanupAfter < 0 || g.DeadServerCleanupAfter >= membership.TombstoneRetention:
		return fmt.Errorf("gossip: dead server cleanup after %v: must be positive and under %v",
			g.DeadServerCleanupAfter, membership.TombstoneRetention)
	case g.ServerStabilization < 0 || g.RetryInterval < 0:
		return errors.New("gossip: negative server stabilization or retry interval")
	}
	g.Voters = cmp.Or(g.Voters, DefaultVoters)
	g.DeadServerCleanupAfter = cmp.Or(g.DeadServerCleanupAfter, DefaultDeadServerCleanupAfter)
	g.ServerStabilization = cmp.Or(g.ServerStabilization, DefaultServerStabilization)
	g.RetryInterval = cmp.Or(g.RetryInterval, DefaultGossipRetryInterval)
	return nil
}

// splitGossipAddr parses a bind address as membership takes it: an IP literal (or an empty
// host, the wildcard) and a port, so that a host name fails here, at configuration time.
func splitGossipAddr(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q is not an IP address", host)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	return host, int(p), nil
}

// ReadGossipKeys reads a gossip keyring file (see GossipConfig.KeyFile).
func ReadGossipKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not a base64 key: %w", path, line, err)
		}
		if len(k) != membership.KeySize {
			return nil, fmt.Errorf("%s:%d: key is %d bytes, want %d", path, line, len(k), membership.KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no gossip key", path)
	}
	return keys, nil
}

// NewGossipKey returns a fresh gossip key, base64-encoded as a key file line.
func NewGossipKey() (string, error) {
	k := make([]byte, membership.KeySize)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

func readOrCreateGossipKeys(path string, create bool) ([][]byte, error) {
	keys, err := ReadGossipKeys(path)
	if !errors.Is(err, fs.ErrNotExist) || !create {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("gossip needs the keyring every node shares: %w", err)
		}
		return keys, err
	}
	k, err := NewGossipKey()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(k+"\n"), 0o600); err != nil {
		return nil, err
	}
	return ReadGossipKeys(path)
}

// gossip is a node's membership and the loops that act on it.
type gossip struct {
	cfg     GossipConfig
	members *membership.Membership
	reaper  *membership.Reaper
	raft    *cluster.Node
	log     *slog.Logger

	wanPeers *wanPeers

	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// startGossip starts both pools, on the remembered ports when the configured ones are port 0.
// It joins nobody: startLoops and autoJoin do.
func startGossip(ctx context.Context, cfg Config, raft *cluster.Node, region string, addrs transport.NodeAddrs, remembered identity, log *slog.Logger) (*gossip, error) {
	g := &gossip{cfg: *cfg.Gossip, raft: raft, log: log.With("component", "gossip")}
	keys, err := readOrCreateGossipKeys(g.cfg.KeyFile, cfg.DevTLS || (cfg.Bootstrap && !raft.HasState()))
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	if g.wanPeers, err = loadWANPeers(filepath.Join(cfg.DataDir, wanPeersFile), region); err != nil {
		return nil, fmt.Errorf("gossip: remembered WAN peers: %w", err)
	}
	mcfg := membership.Config{
		NodeID:       raft.NodeID(),
		Region:       region,
		GRPCAddr:     addrs.GRPC,
		RaftAddr:     addrs.Raft,
		LANBind:      preferredPort(g.cfg.LANBind, remembered.GossipLANAddr),
		WANBind:      preferredPort(g.cfg.WANBind, remembered.GossipWANAddr),
		LANAdvertise: g.cfg.LANAdvertise,
		WANAdvertise: g.cfg.WANAdvertise,
		Keys:         keys,
		Profile:      g.cfg.Profile,
		Logger:       g.log,
	}
	g.members, err = membership.Start(ctx, mcfg)
	if err != nil && !errors.Is(err, membership.ErrInvalidConfig) &&
		(mcfg.LANBind != g.cfg.LANBind || mcfg.WANBind != g.cfg.WANBind) {
		// A remembered port another process took meanwhile: any port will do, as for gRPC.
		g.log.Warn("remembered gossip ports are taken; binding the configured ones", "err", err)
		mcfg.LANBind, mcfg.WANBind = g.cfg.LANBind, g.cfg.WANBind
		g.members, err = membership.Start(ctx, mcfg)
	}
	if err != nil {
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.reaper, err = membership.NewReaper(membership.ReaperConfig{
		Self:    raft.NodeID(),
		Policy:  membership.CleanupPolicy{After: g.cfg.DeadServerCleanupAfter},
		Servers: g.raftServers,
		Members: g.members.LANMembers,
		Remover: raft,
		Logger:  g.log,
	})
	if err != nil {
		_ = g.members.Shutdown()
		return nil, err
	}
	return g, nil
}

func (g *gossip) raftServers(context.Context) ([]membership.RaftServer, error) {
	servers, err := g.raft.Servers()
	if err != nil {
		return nil, err
	}
	out := make([]membership.RaftServer, 0, len(servers))
	for _, s := range servers {
		out = append(out, membership.RaftServer{ID: s.ID, Voter: s.Suffrage == cluster.Voter})
	}
	return out, nil
}

// tick is the gossip loops' period: often enough that a node's role and its region peers' WAN
// pools are picked up within seconds, and no rarer than the reaper's own passes.
func (g *gossip) tick() time.Duration {
	return min(g.cfg.DeadServerCleanupAfter/4, maxGossipTick)
}

// startLoops runs, until stop: background joins of the seeds (the LAN ones unless autoJoin
// joins the pool itself), the reaper, the loop that announces this node's leadership and role
// and, on the leader, admits returning and promotable servers, and the linking of region peers'
// WAN pools.
func (g *gossip) startLoops(server *transport.Server, fsmNode func(id string) (raftAddr string, ok bool), joinLAN bool) {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	if joinLAN && len(g.cfg.RetryJoin) > 0 {
		g.workers.Go(func() { g.joinInBackground(ctx, membership.LAN, g.members.JoinLAN, g.cfg.RetryJoin) })
	}
	if len(g.cfg.WANJoin) > 0 {
		g.workers.Go(func() { g.joinInBackground(ctx, membership.WAN, g.members.JoinWAN, g.cfg.WANJoin) })
	}
	g.workers.Go(func() { g.reaper.Run(ctx) })
	g.workers.Go(func() { g.loop(ctx, server, fsmNode) })
	// Apart from the loop: a join to a peer whose WAN port is unreachable waits out
	// memberlist's TCP timeout, which must not hold up leadership announcements.
	g.workers.Go(func() { g.linkWANPeers(ctx) })
}

func (g *gossip) linkWANPeers(ctx context.Context) {
	t := time.NewTicker(g.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := g.members.JoinRegionPeersWAN(); err != nil && ctx.Err() == nil {
			g.log.Debug("joining region peers' WAN pools failed", "err", err)
		}
		rejoin, err := g.wanPeers.update(g.members.WANMembers())
		if err != nil {
			g.log.Warn("remembering other regions' WAN addresses failed", "err", err)
		}
		if len(rejoin) > 0 {
			if _, err := g.members.JoinWAN(rejoin); err != nil && ctx.Err() == nil {
				g.log.Debug("no other region answered at its remembered WAN addresses", "addrs", rejoin, "err", err)
			}
		}
	}
}

// stop ends the loops and leaves both pools without a goodbye: peers see a failure, the same as
// after a crash, so that a restart does not look like a node leaving for good.
func (g *gossip) stop() error {
	if g.cancel != nil {
		g.cancel()
	}
	// Shut down before waiting: a loop blocked in a metadata update returns at once.
	err := g.members.Shutdown()
	g.workers.Wait()
	return err
}

func (g *gossip) joinInBackground(ctx context.Context, pool membership.Pool, join membership.JoinFunc, seeds []string) {
	n, err := membership.RetryJoin(ctx, g.loggingJoin(pool, join), seeds, g.cfg.RetryInterval)
	if err == nil {
		g.log.Info("joined gossip pool", "pool", pool, "seeds_answered", n)
	}
}

// loggingJoin logs the first failure of a join and every 30th after, not one a second.
func (g *gossip) loggingJoin(pool membership.Pool, join membership.JoinFunc) membership.JoinFunc {
	failures := 0
	return func(seeds []string) (int, error) {
		n, err := join(seeds)
		if err != nil {
			if failures%30 == 0 {
				g.log.Warn("gossip join failed; retrying", "pool", pool, "seeds", seeds, "err", err)
			}
			failures++
		}
		return n, err
	}
}

func (g *gossip) loop(ctx context.Context, server *transport.Server, fsmNode func(string) (string, bool)) {
	leaderCh := g.raft.LeadershipChanges()
	t := time.NewTicker(g.tick())
	defer t.Stop()
	leader := false
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-leaderCh:
			if !ok {
				return
			}
			leader = l
			g.reaper.SetLeader(l)
		case <-t.C:
		}
		if err := g.members.SetLeader(leader); err != nil && ctx.Err() == nil {
			g.log.Warn("announcing leadership failed; retrying", "leader", leader, "err", err)
		}
		servers, err := g.raft.Servers()
		if err != nil {
			continue
		}
		g.announceRole(ctx, servers)
		if leader {
			g.admit(ctx, server, servers, fsmNode)
		}
	}
}

// announceRole gossips this node's suffrage as its Raft configuration states it. A node not in
// the configuration (not yet admitted, or removed) keeps announcing what it last was.
func (g *gossip) announceRole(ctx context.Context, servers []cluster.Server) {
	for _, s := range servers {
		if s.ID != g.raft.NodeID() {
			continue
		}
		if err := g.members.SetRole(s.Suffrage); err != nil && ctx.Err() == nil {
			g.log.Warn("announcing role failed; retrying", "role", s.Suffrage, "err", err)
		}
		return
	}
}

// admit runs on the leader. It promotes a nonvoter that has been alive for ServerStabilization
// while the configuration has fewer than Voters voters, and adds back a server that the region
// admitted before (it is in the node registry at the Raft address it gossips) and that is alive
// again after dead-server cleanup removed it. A node an operator removed is also out of the
// registry, so it stays out.
func (g *gossip) admit(ctx context.Context, server *transport.Server, servers []cluster.Server, fsmNode func(string) (string, bool)) {
	conf := make(map[string]cluster.Server, len(servers))
	voters := 0
	for _, s := range servers {
		conf[s.ID] = s
		if s.Suffrage == cluster.Voter {
			voters++
		}
	}
	now := time.Now()
	for _, m := range g.members.LANMembers() {
		if m.ID == g.raft.NodeID() || m.Status != membership.StatusAlive || now.Sub(m.LastChange) < g.cfg.ServerStabilization {
			continue
		}
		s, inConf := conf[m.ID]
		addr := s.Address
		switch {
		case inConf && (s.Suffrage == cluster.Voter || voters >= g.cfg.Voters):
			continue
		case !inConf:
			registered, ok := fsmNode(m.ID)
			if !ok || registered != m.RaftAddr {
				continue
			}
			addr = registered
		}
		actx, cancel := context.WithTimeout(ctx, admitTimeout)
		suffrage, err := server.AdmitServer(actx, m.ID, addr)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				g.log.Warn("admitting server failed", "server", m.ID, "err", err)
			}
			continue
		}
		if suffrage == cluster.Voter {
			voters++
		}
		what := "added back a server that returned"
		if inConf {
			what = "promoted a nonvoter"
		}
		g.log.Info(what, "server", m.ID, "suffrage", suffrage)
	}
}

// autoJoin joins the region through the LAN seeds: first the pool, then Raft through a member.
func (g *gossip) autoJoin(ctx context.Context, server *transport.Server, secret []byte, addrs transport.NodeAddrs, log *slog.Logger) error {
	if len(secret) == 0 {
		return errors.New("joining needs the region's join secret (-join-secret-file)")
	}
	log.Info("joining the region through gossip", "seeds", g.cfg.RetryJoin)
	if _, err := membership.RetryJoin(ctx, g.loggingJoin(membership.LAN, g.members.JoinLAN), g.cfg.RetryJoin, g.cfg.RetryInterval); err != nil {
		return fmt.Errorf("join the region's gossip pool through %v: %w", g.cfg.RetryJoin, err)
	}
	attempt := 0
	return retry(ctx, log, "join", func() error {
		targets, leaders := g.joinTargets()
		if len(targets) == 0 {
			return errors.New("the gossip pool has no other member with a gRPC address yet")
		}
		target := targets[attempt%len(targets)]
		attempt++
		actx := ctx
		if !leaders {
			// A member that is not the leader passes the request on once it knows one; a
			// member still joining never will.
			var cancel context.CancelFunc
			actx, cancel = context.WithTimeout(ctx, joinAttemptTimeout)
			defer cancel()
		}
		return server.JoinRegion(actx, target, secret, addrs)
	})
}

// joinTargets lists the gRPC addresses to ask for admission: the members announcing that they
// lead (leaders is then true), or, when none does (yet), every other alive member.
func (g *gossip) joinTargets() (targets []string, leaders bool) {
	var others []string
	for _, m := range g.members.LANMembers() {
		if m.ID == g.raft.NodeID() || m.Status != membership.StatusAlive || m.GRPCAddr == "" {
			continue
		}
		if m.Leader {
			targets = append(targets, m.GRPCAddr)
		} else {
			others = append(others, m.GRPCAddr)
		}
	}
	if len(targets) > 0 {
		return targets, true
	}
	return others, false
}

// preferredPort keeps the configured host but takes the remembered port when the configured
// one is 0, so a node's gossip address survives a restart like its gRPC and Raft addresses.
func preferredPort(configured, remembered string) string {
	host, port, err := net.SplitHostPort(configured)
	if err != nil || port != "0" || remembered == "" {
		return configured
	}
	if _, rport, err := net.SplitHostPort(remembered); err == nil {
		return net.JoinHostPort(host, rport)
	}
	return configured
}

package membership

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/trent-kms/trent/cluster"
)

// KeySize is the size of a gossip key: memberlist's AES-256-GCM. memberlist also accepts 16 and
// 24 bytes; the shorter keys are refused so every deployment gets the same strength.
const KeySize = 32

// Profile selects gossip timing.
type Profile uint8

const (
	// ProfileDatacenter is memberlist's LAN timing for the LAN pool and its WAN timing for the
	// WAN pool: failures are detected in seconds without flooding real networks.
	ProfileDatacenter Profile = iota
	// ProfileLocal is memberlist's local (single host or fast LAN) timing for both pools.
	ProfileLocal
	// ProfileFast probes every 100ms and gossips every 20ms: loopback clusters in tests detect a
	// failure in one to three seconds. Too chatty for a real network.
	ProfileFast
)

// Config describes one node's membership. NodeID, Region, LANBind, WANBind and Keys are required.
type Config struct {
	NodeID   string
	Region   string
	Role     cluster.Suffrage // zero is cluster.Voter
	GRPCAddr string           // announced to peers; membership does not listen on it
	RaftAddr string           // likewise

	// LANBind and WANBind are host:port to gossip on (TCP and UDP, same port). Port 0 picks a
	// free port; LANAddr and WANAddr then tell what was picked.
	LANBind string
	WANBind string
	// LANAdvertise and WANAdvertise, when set, are the host:port peers should use instead (NAT,
	// or a wildcard bind).
	LANAdvertise string
	WANAdvertise string

	// Keys encrypt and authenticate LAN gossip: KeySize bytes each, the first one encrypts, all
	// of them decrypt. Rotation is three rolling restarts: add the new key second everywhere,
	// then make it first everywhere, then drop the old one.
	Keys [][]byte
	// WANKeys do the same for the WAN pool; empty means Keys. Separate keys keep one region's
	// gossip key from opening every other region's LAN.
	WANKeys [][]byte

	Profile Profile

	// OnEvent, when set, receives every join, update and leave in both pools, in order per
	// pool, from one goroutine. Events are queued, so a slow OnEvent delays later events but
	// never gossip.
	OnEvent func(Event)

	// Logger receives membership's own records and memberlist's log lines at debug level.
	// Nil discards.
	Logger *slog.Logger

	// now is the clock; tests replace it.
	now func() time.Time
}

func (c Config) validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("%w: NodeID is empty", ErrInvalidConfig)
	case c.Region == "":
		return fmt.Errorf("%w: Region is empty", ErrInvalidConfig)
	case strings.Contains(c.Region, "/"):
		// WAN pool names are region/id; a slash in the region would make two nodes' names
		// collide.
		return fmt.Errorf("%w: Region %q contains a slash", ErrInvalidConfig, c.Region)
	case c.Role != cluster.Voter && c.Role != cluster.Nonvoter:
		return fmt.Errorf("%w: unknown role %d", ErrInvalidConfig, c.Role)
	case c.Profile > ProfileFast:
		return fmt.Errorf("%w: unknown profile %d", ErrInvalidConfig, c.Profile)
	}
	for name, addr := range map[string]string{"LANBind": c.LANBind, "WANBind": c.WANBind} {
		if _, _, err := splitIPPort(addr, true); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, name, err)
		}
	}
	for name, addr := range map[string]string{"LANAdvertise": c.LANAdvertise, "WANAdvertise": c.WANAdvertise} {
		if addr == "" {
			continue
		}
		if _, _, err := splitIPPort(addr, false); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidConfig, name, err)
		}
	}
	if err := validateKeys(c.Keys); err != nil {
		return fmt.Errorf("%w: Keys: %w", ErrInvalidConfig, err)
	}
	if len(c.WANKeys) > 0 {
		if err := validateKeys(c.WANKeys); err != nil {
			return fmt.Errorf("%w: WANKeys: %w", ErrInvalidConfig, err)
		}
	}
	// memberlist panics on oversized metadata; the leader flag is the only thing that changes
	// at run time and does not change the size, so checking once is enough.
	if n := len(c.meta().encode()); n > maxMetaSize {
		return fmt.Errorf("%w: node metadata is %d bytes, limit %d", ErrInvalidConfig, n, maxMetaSize)
	}
	return nil
}

// validateKeys insists on encryption: DESIGN.md requires every connection to be authenticated,
// and an empty keyring would make memberlist gossip in the clear.
func validateKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("no gossip key")
	}
	for i, k := range keys {
		if len(k) != KeySize {
			return fmt.Errorf("key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		for _, earlier := range keys[:i] {
			if bytes.Equal(earlier, k) {
				return fmt.Errorf("key %d is listed twice", i)
			}
		}
	}
	return nil
}

func (c Config) meta() nodeMeta {
	return nodeMeta{ID: c.NodeID, Region: c.Region, Role: c.Role, GRPCAddr: c.GRPCAddr, RaftAddr: c.RaftAddr}
}

// splitIPPort parses "ip:port". memberlist takes IP literals only: it would listen on every
// interface when handed a host name it cannot parse. An empty host binds the wildcard address.
func splitIPPort(addr string, bind bool) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	switch {
	case host == "" && bind:
		host = "0.0.0.0"
	case net.ParseIP(host) == nil:
		return "", 0, fmt.Errorf("%q is not an IP address", host)
	case p == 0 && !bind:
		return "", 0, fmt.Errorf("advertised port 0")
	}
	return host, int(p), nil
}

// timing returns memberlist's base config for one pool under profile p.
func (p Profile) timing(pool Pool) *memberlist.Config {
	switch p {
	case ProfileLocal:
		return memberlist.DefaultLocalConfig()
	case ProfileFast:
		c := memberlist.DefaultLocalConfig()
		c.ProbeInterval = 100 * time.Millisecond
		c.GossipInterval = 20 * time.Millisecond
		// Loopback answers in microseconds, but a loaded CI machine running the race detector
		// can stall a process for tens of milliseconds: a generous probe timeout and a long
		// suspicion leave a stalled node time to refute before it is declared dead. A real
		// failure is still declared within about a second when a second node confirms it.
		c.ProbeTimeout = 80 * time.Millisecond
		c.SuspicionMult = 5
		c.SuspicionMaxTimeoutMult = 6
		c.RetransmitMult = 3
		c.PushPullInterval = time.Second
		c.GossipToTheDeadTime = 2 * time.Second
		c.TCPTimeout = 2 * time.Second
		return c
	default:
		if pool == WAN {
			return memberlist.DefaultWANConfig()
		}
		return memberlist.DefaultLANConfig()
	}
}

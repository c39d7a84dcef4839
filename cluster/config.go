package cluster

import (
	"errors"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
)

// Config describes one node of a Raft group. Zero tunables take the defaults below, chosen for
// loopback and LAN round trips; tests shorten them.
type Config struct {
	NodeID  string
	DataDir string // Raft state lives in DataDir/raft: raft.db (log and stable store) and snapshots/.

	// BindAddr is the Raft TCP listen address; port 0 picks a free port. AdvertiseAddr is what
	// peers dial; empty means the resolved listen address, which must then not be unspecified.
	BindAddr      string
	AdvertiseAddr string

	// Transport replaces the built-in TCP transport (the TLS stream layer, or raft.InmemTransport
	// in fault-injection tests). Raft closes it on Shutdown if it has a Close method.
	Transport raft.Transport

	StateMachine StateMachine
	Snapshot     func() (StateSnapshot, error)

	// Logger receives Raft's own logging; nil discards it.
	Logger *slog.Logger

	HeartbeatTimeout   time.Duration // default 1s
	ElectionTimeout    time.Duration // default 1s
	LeaderLeaseTimeout time.Duration // default 500ms; must not exceed HeartbeatTimeout

	// CommitTimeout is how often the leader sends each follower its commit index while no write
	// flows; default 50ms, Raft's own. A follower read that needs a write it has not applied does
	// not wait for it: the leader sends the commit index at once (ServeReadIndex). Shorter only
	// costs idle CPU: at 10ms an idle leader used 8% of a core on the reference machine, 4% at 50ms.
	CommitTimeout time.Duration

	SnapshotThreshold uint64        // default 8192 entries
	SnapshotInterval  time.Duration // default 2m
	TrailingLogs      uint64        // default 10240 entries

	// ReadIndexTimeout bounds one read-index round (leader verification, or the fetch from the
	// leader), independently of the callers waiting on it. Default 2 × ElectionTimeout.
	ReadIndexTimeout time.Duration

	// StrictReads makes every read-index batch confirm leadership with a
	// quorum round, and every follower read fetch the leader's read index.
	// By default the leader instead holds a read lease for half the
	// heartbeat timeout after each successful round, and followers hold
	// read leases granted by the leader (see DESIGN.md, "Read lease" and
	// "Follower read leases"), which removes those rounds from most reads.
	StrictReads bool

	readLease     time.Duration // derived by withDefaults
	followerLease time.Duration // derived by withDefaults; 0 = followers fetch for every read
	// followerLeaseMaxLag: a follower this many entries behind the leader's applied index gets
	// no lease, so one catching up after downtime does not hold every write until it has.
	followerLeaseMaxLag uint64
	// followerLeaseCooldown: a follower that a write has waited on for longer than a lease gets
	// no lease for this long (it fetches for every read), so a slow follower stalls the writes
	// of one such spell in that time rather than every write. Negative: never (tests).
	followerLeaseCooldown time.Duration
}

const (
	defaultHeartbeatTimeout   = time.Second
	defaultElectionTimeout    = time.Second
	defaultLeaderLeaseTimeout = 500 * time.Millisecond
	defaultCommitTimeout      = 50 * time.Millisecond
	defaultSnapshotThreshold  = 8192
	// Followers in step lag by a batch or two (at most 64 entries each); 1024 is well clear of that.
	defaultFollowerLeaseMaxLag = 1024
	// 20 leases: 5 s at the default heartbeat timeout.
	followerLeaseCooldownLeases = 20
	defaultSnapshotInterval     = 2 * time.Minute
	defaultTrailingLogs         = 10240
	snapshotsRetained           = 2
	logCacheEntries             = 512
	maxPooledConnections        = 5
	transportTimeout            = 10 * time.Second
)

func (c Config) withDefaults() Config {
	setDuration(&c.HeartbeatTimeout, defaultHeartbeatTimeout)
	setDuration(&c.ElectionTimeout, defaultElectionTimeout)
	setDuration(&c.LeaderLeaseTimeout, min(defaultLeaderLeaseTimeout, c.HeartbeatTimeout))
	setDuration(&c.CommitTimeout, defaultCommitTimeout)
	setDuration(&c.SnapshotInterval, defaultSnapshotInterval)
	setDuration(&c.ReadIndexTimeout, 2*c.ElectionTimeout)
	if c.StrictReads {
		c.readLease, c.followerLease = 0, 0
	} else {
		c.readLease = c.HeartbeatTimeout / 2
		c.followerLease = c.HeartbeatTimeout / 4
	}
	if c.followerLeaseCooldown == 0 {
		c.followerLeaseCooldown = followerLeaseCooldownLeases * c.followerLease
	}
	if c.followerLeaseMaxLag == 0 {
		c.followerLeaseMaxLag = defaultFollowerLeaseMaxLag
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = defaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = defaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (c Config) validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("NodeID is empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("DataDir is empty"))
	}
	if c.Transport == nil && c.BindAddr == "" {
		errs = append(errs, errors.New("neither BindAddr nor Transport is set"))
	}
	if c.StateMachine == nil {
		errs = append(errs, errors.New("StateMachine is nil"))
	}
	if c.Snapshot == nil {
		errs = append(errs, errors.New("Snapshot is nil"))
	}
	return errors.Join(errs...)
}

func (c Config) raftConfig(notify chan<- bool) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	// Concurrent Applies are grouped into one log append and one fsync: the throughput lever.
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = false
	// A removed server stays a follower rather than shutting raft down under the Node.
	rc.ShutdownOnRemove = false
	// Delivered for every transition (raft blocks on it), unlike LeaderCh which coalesces.
	rc.NotifyCh = notify
	rc.Logger = newHCLogger(c.Logger, "raft")
	return rc
}

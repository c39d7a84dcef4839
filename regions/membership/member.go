package membership

import (
	"strconv"
	"time"

	"github.com/trent-kms/trent/cluster"
)

// Status is a member's liveness as this node sees it.
type Status uint8

const (
	// StatusAlive: gossip considers the member alive.
	StatusAlive Status = iota
	// StatusSuspect: still a member, but it has not acknowledged this node's own probes for
	// several probe rounds. memberlist keeps its suspicion state private, so this is the local
	// view; a suspect member either answers again or is declared dead.
	StatusSuspect
	// StatusDead: the pool declared the member failed.
	StatusDead
	// StatusLeft: the member left the pool on purpose.
	StatusLeft
)

func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusSuspect:
		return "suspect"
	case StatusDead:
		return "dead"
	case StatusLeft:
		return "left"
	default:
		return "status(" + strconv.Itoa(int(s)) + ")"
	}
}

// failed reports whether the member is gone from the pool, for good or until it rejoins.
func (s Status) failed() bool { return s == StatusDead || s == StatusLeft }

// Pool names one of a node's two gossip pools.
type Pool uint8

const (
	// LAN is the pool of one region's nodes.
	LAN Pool = iota
	// WAN is the pool of all regions' nodes.
	WAN
)

func (p Pool) String() string {
	if p == LAN {
		return "lan"
	}
	return "wan"
}

// Member is one node of a pool, from its gossiped metadata and this node's view of its liveness.
type Member struct {
	ID         string
	Region     string
	Role       cluster.Suffrage // as the member announces it
	GRPCAddr   string
	RaftAddr   string
	Leader     bool // it announced that it leads its region's Raft group
	GossipAddr string
	WANAddr    string // its WAN pool address as it announces it; empty if it predates the field
	Status     Status
	// LastChange is when this node saw Status last change (or, for alive members, the metadata).
	LastChange time.Time
}

// EventType says what happened to a member.
type EventType uint8

const (
	EventJoin EventType = iota
	// EventUpdate: the member's metadata changed (for example its Leader flag).
	EventUpdate
	// EventLeave: the member left or was declared dead; Member.Status says which.
	EventLeave
)

func (t EventType) String() string {
	switch t {
	case EventJoin:
		return "join"
	case EventUpdate:
		return "update"
	default:
		return "leave"
	}
}

// Event is one membership change in one pool.
type Event struct {
	Type   EventType
	Pool   Pool
	Member Member
}

package membership

import (
	"cmp"
	"slices"
	"time"
)

// RaftServer is one entry of a Raft configuration, as the cleanup policy needs it.
type RaftServer struct {
	ID    string
	Voter bool
}

// QuorumRule returns how many voters of a configuration of n voters make a quorum.
type QuorumRule func(n int) int

// Majority is Raft's quorum: more than half.
func Majority(n int) int { return n/2 + 1 }

// CleanupPolicy decides which failed servers to take out of a region's Raft configuration, in
// the manner of Consul's autopilot dead-server cleanup. It is pure: no clock, no I/O, so every
// rule is tested directly.
type CleanupPolicy struct {
	// After is how long a server must have been failed before it is removed
	// (DeadServerCleanupAfter). Shorter than TombstoneRetention.
	After time.Duration
	// Quorum is the quorum rule; nil is Majority.
	Quorum QuorumRule
	// MinVoters, if set, is a floor under the number of voters cleanup leaves behind, for
	// operators who prefer a degraded group of the planned size to a smaller healthy one.
	MinVoters int
}

// ServersToRemove returns the ids to remove, in the order to remove them. failed maps the ids
// of members the pool reports dead or left to when they were seen failing; ids it does not
// name, and ids gossip never saw, count as healthy, so a server is only ever removed on positive
// evidence.
//
// The rules:
//   - only servers failed for at least After, never self (the leader running the policy);
//   - nonvoters first: they do not count towards quorum;
//   - voters oldest failure first, and only while the voters left healthy are a quorum of the
//     configuration without the removed ones, so each removal can commit;
//   - no voter at all when the healthy voters are not a quorum of the current configuration:
//     a leader that sees that many failures is more likely cut off than its peers dead, and
//     removing them would hand its minority the group.
func (p CleanupPolicy) ServersToRemove(self string, servers []RaftServer, failed map[string]time.Time, now time.Time) []string {
	quorum := p.Quorum
	if quorum == nil {
		quorum = Majority
	}
	type candidate struct {
		id    string
		since time.Time
	}
	var voters, healthy int
	var nonvoters, dead []candidate
	for _, s := range servers {
		since, isFailed := failed[s.ID]
		isFailed = isFailed && s.ID != self
		if s.Voter {
			voters++
			if !isFailed {
				healthy++
			}
		}
		if !isFailed || now.Sub(since) < p.After {
			continue
		}
		if s.Voter {
			dead = append(dead, candidate{s.ID, since})
		} else {
			nonvoters = append(nonvoters, candidate{s.ID, since})
		}
	}
	byAge := func(a, b candidate) int {
		return cmp.Or(a.since.Compare(b.since), cmp.Compare(a.id, b.id))
	}
	slices.SortFunc(nonvoters, byAge)
	slices.SortFunc(dead, byAge)

	var remove []string
	for _, c := range nonvoters {
		remove = append(remove, c.id)
	}
	if healthy < quorum(voters) {
		return remove
	}
	for _, c := range dead {
		next := voters - 1
		if next < 1 || next < p.MinVoters || healthy < quorum(next) {
			break
		}
		voters = next
		remove = append(remove, c.id)
	}
	return remove
}

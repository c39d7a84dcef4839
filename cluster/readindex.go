package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ReadIndexFetcher asks the leader identified by leaderID for its read index and a read lease;
// transport implements it as an RPC. It must call ServeReadIndex on that leader, naming this
// node as the follower, not use a cached value, and return its error when the leader refuses,
// so a deposed leader cannot vouch for stale state. applied is this follower's applied index,
// which the leader uses to send its commit index at once when the follower is behind.
type ReadIndexFetcher func(ctx context.Context, leaderID string, applied uint64) (ReadIndexReply, error)

// SetReadIndexFetcher installs the follower side of ReadBarrier. Until it is set, ReadBarrier on
// a follower fails with ErrNoLeader.
func (n *Node) SetReadIndexFetcher(f ReadIndexFetcher) { n.fetcher.Store(&f) }

// ReadBarrier returns once this node has applied every command the leader had committed when
// the call arrived, so a read of the state machine that follows is linearizable. On the leader it
// uses LeaderReadIndex; on a follower its read lease, or else one fetch from the leader serves
// all callers queued for the same round (and renews the lease). It fails with ErrNoLeader when
// no leader is known or the leader cannot confirm its leadership (a partitioned minority stops
// serving); callers may retry.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if n.isShutdown() {
		return ErrShutdown
	}
	var (
		index uint64
		err   error
	)
	if n.raft.State() == raft.Leader {
		index, err = n.LeaderReadIndex(ctx)
		if errors.Is(err, ErrNotLeader) {
			err = fmt.Errorf("%w: %w", ErrNoLeader, err)
		}
	} else {
		index, err = n.followerReadIndex(ctx)
	}
	if err != nil {
		return fmt.Errorf("read barrier: %w", err)
	}
	if err := n.sm.WaitApplied(ctx, index); err != nil {
		return fmt.Errorf("read barrier: wait for index %d: %w", index, err)
	}
	return nil
}

// LeaderReadIndex is the leader side of a read: after confirming leadership with a quorum, it
// returns the index a reader must have applied, namely the last command committed when the call
// arrived. (Not the commit index itself: no-op, barrier and configuration entries never reach the
// state machine, so its applied index might never equal a commit index ending in one.) Leader
// only; concurrent callers share one verification round.
func (n *Node) LeaderReadIndex(ctx context.Context) (uint64, error) {
	if n.isShutdown() {
		return 0, ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return 0, fmt.Errorf("leader read index: %w", n.notLeader())
	}
	if index, ok, err := n.leasedReadIndex(); ok || err != nil {
		return index, err
	}
	index, err := n.leaderReads.do(ctx)
	if err != nil {
		return 0, fmt.Errorf("leader read index: %w", err)
	}
	return index, nil
}

// ServeReadIndex is LeaderReadIndex for follower, which has applied up to followerApplied, and
// grants it a read lease when follower names a member of the region that is not far behind
// (empty: no lease). The lease is recorded before the read index is computed (see
// leaseGrants.record). When followerApplied is short of the read index, the follower would wait
// for its next append to learn the commit index (up to CommitTimeout when no write follows), so
// the leader sends it at once.
func (n *Node) ServeReadIndex(ctx context.Context, follower string, followerApplied uint64) (ReadIndexReply, error) {
	term := n.grantFollowerLease(follower, followerApplied)
	index, err := n.LeaderReadIndex(ctx)
	if err != nil {
		return ReadIndexReply{}, err
	}
	if followerApplied < index {
		n.nudger.request()
	}
	if term != 0 && n.raft.CurrentTerm() != term {
		term = 0 // leadership moved meanwhile: no lease
	}
	return ReadIndexReply{Index: index, LeaseTerm: term}, nil
}

// followerReadIndex is a follower's read index: its lease's while the lease lasts, otherwise a
// fetch from the leader. Once less than half the lease is left, one reader fetches anyway, so a
// steady stream of reads renews the lease before it ends.
func (n *Node) followerReadIndex(ctx context.Context) (uint64, error) {
	if n.cfg.followerLease > 0 {
		leaderID, _ := n.Leader()
		index, ok, renew := n.lease.usable(n.raft.CurrentTerm(), leaderID, time.Now(), n.cfg.followerLease)
		if ok && n.raft.State() == raft.Follower {
			if !renew || !n.lease.renewing.CompareAndSwap(false, true) {
				return index, nil
			}
			defer n.lease.renewing.Store(false)
		}
	}
	return n.followerReads.do(ctx)
}

// fetchReadIndex is one follower round: ask the leader this node knows, and keep the lease it
// grants.
func (n *Node) fetchReadIndex(ctx context.Context) (uint64, error) {
	leaderID, _ := n.Leader()
	if leaderID == "" {
		return 0, ErrNoLeader
	}
	fetch := n.fetcher.Load()
	if fetch == nil || *fetch == nil {
		return 0, fmt.Errorf("%w: no read-index fetcher set", ErrNoLeader)
	}
	sent := time.Now()
	reply, err := (*fetch)(ctx, leaderID, n.sm.AppliedIndex())
	if err != nil {
		return 0, fmt.Errorf("%w: read index from %s: %w", ErrNoLeader, leaderID, err)
	}
	if reply.LeaseTerm != 0 && n.cfg.followerLease > 0 {
		n.lease.set(reply.LeaseTerm, leaderID, reply.Index, sent.Add(n.cfg.followerLease))
	}
	return reply.Index, nil
}

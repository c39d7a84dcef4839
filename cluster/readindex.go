package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// ReadIndexFetcher asks the leader identified by leaderID for its read index; transport
// implements it as an RPC. It must call ServeReadIndex (or LeaderReadIndex) on that leader, not
// use a cached value, and return its error when the leader refuses, so a deposed leader cannot
// vouch for stale state. applied is this follower's applied index, which the leader uses to send
// its commit index at once when the follower is behind (ServeReadIndex).
type ReadIndexFetcher func(ctx context.Context, leaderID string, applied uint64) (uint64, error)

// SetReadIndexFetcher installs the follower side of ReadBarrier. Until it is set, ReadBarrier on
// a follower fails with ErrNoLeader.
func (n *Node) SetReadIndexFetcher(f ReadIndexFetcher) { n.fetcher.Store(&f) }

// ReadBarrier returns once this node has applied every command the leader had committed when
// the call arrived, so a read of the state machine that follows is linearizable. On the leader it
// uses LeaderReadIndex; on a follower one fetch from the leader serves all callers queued for the
// same round. It fails with ErrNoLeader when no leader is known or the leader cannot confirm its
// leadership (a partitioned minority stops serving); callers may retry.
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
		index, err = n.followerReads.do(ctx)
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

// ServeReadIndex is LeaderReadIndex for a follower that has applied up to followerApplied. When
// that is short of the read index, the follower would wait for its next append to learn the
// commit index (up to CommitTimeout when no write follows), so the leader sends it at once.
func (n *Node) ServeReadIndex(ctx context.Context, followerApplied uint64) (uint64, error) {
	index, err := n.LeaderReadIndex(ctx)
	if err == nil && followerApplied < index {
		n.nudger.request()
	}
	return index, err
}

// fetchReadIndex is one follower round: ask the leader this node knows.
func (n *Node) fetchReadIndex(ctx context.Context) (uint64, error) {
	leaderID, _ := n.Leader()
	if leaderID == "" {
		return 0, ErrNoLeader
	}
	fetch := n.fetcher.Load()
	if fetch == nil || *fetch == nil {
		return 0, fmt.Errorf("%w: no read-index fetcher set", ErrNoLeader)
	}
	index, err := (*fetch)(ctx, leaderID, n.sm.AppliedIndex())
	if err != nil {
		return 0, fmt.Errorf("%w: read index from %s: %w", ErrNoLeader, leaderID, err)
	}
	return index, nil
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// readIndexState is only touched by read-index rounds, which the batcher runs one at a time;
// the mutex keeps that from being load-bearing.
type readIndexState struct {
	mu sync.Mutex
	// committedTerm is the latest term in which a barrier of this leader has committed. Until
	// then a new leader's commit index may lag what earlier leaders committed.
	committedTerm uint64
	// lastScan memoises lastCommandAtOrBelow, so idle rounds do not rescan the same entries.
	lastScan struct{ commit, command uint64 }
	// lease: until when, in which term, this leader may answer without a quorum round.
	lease struct {
		term  uint64
		until time.Time
	}
}

// leasedReadIndex answers from the leader's own commit index while its read
// lease holds; ok is false when a quorum round is needed.
func (n *Node) leasedReadIndex() (index uint64, ok bool, err error) {
	if n.cfg.readLease == 0 || n.raft.State() != raft.Leader {
		return 0, false, nil
	}
	term := n.raft.CurrentTerm()
	n.readIndex.mu.Lock()
	valid := n.readIndex.lease.term == term && time.Now().Before(n.readIndex.lease.until) && n.readIndex.committedTerm == term
	n.readIndex.mu.Unlock()
	if !valid {
		return 0, false, nil
	}
	index, err = n.lastCommandAtOrBelow(n.raft.CommitIndex())
	return index, err == nil, err
}

// extendLease records a quorum round of term that started at start.
func (n *Node) extendLease(term uint64, start time.Time) {
	if n.cfg.readLease == 0 {
		return
	}
	n.readIndex.mu.Lock()
	defer n.readIndex.mu.Unlock()
	if until := start.Add(n.cfg.readLease); term > n.readIndex.lease.term || until.After(n.readIndex.lease.until) {
		n.readIndex.lease.term, n.readIndex.lease.until = term, until
	}
}

// verifiedReadIndex is one leader round of the read-index protocol.
func (n *Node) verifiedReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, n.notLeader()
	}
	term := n.raft.CurrentTerm()
	if err := n.commitInTerm(ctx, term); err != nil {
		return 0, err
	}
	commit := n.raft.CommitIndex()
	start := time.Now()
	if err := await(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, n.translate("verify leader", err)
	}
	if n.raft.CurrentTerm() != term {
		return 0, n.notLeader()
	}
	n.extendLease(term, start)
	return n.lastCommandAtOrBelow(commit)
}

// commitInTerm makes sure an entry of this leader's term has committed, once per term. Raft
// appends a no-op when elected, but only a Barrier lets us wait for it.
func (n *Node) commitInTerm(ctx context.Context, term uint64) error {
	n.readIndex.mu.Lock()
	done := n.readIndex.committedTerm == term
	n.readIndex.mu.Unlock()
	if done {
		return nil
	}
	if err := await(ctx, n.raft.Barrier(enqueueTimeout(ctx))); err != nil {
		return n.translate("commit in term", err)
	}
	if n.raft.CurrentTerm() != term {
		return n.notLeader()
	}
	n.readIndex.mu.Lock()
	n.readIndex.committedTerm = term
	n.readIndex.mu.Unlock()
	return nil
}

// lastCommandAtOrBelow returns the index of the last command entry at or below commit, scanning
// back from commit over no-op, barrier and configuration entries. Any answer at least that high
// and at most a committed command's index is correct, which is what the shortcuts rely on.
func (n *Node) lastCommandAtOrBelow(commit uint64) (uint64, error) {
	applied := n.sm.AppliedIndex()
	if applied >= commit {
		return commit, nil
	}
	n.readIndex.mu.Lock()
	memo := n.readIndex.lastScan
	n.readIndex.mu.Unlock()

	// Everything at or below floor is known: result is the last command there.
	floor, result := applied, applied
	if memo.commit > applied && memo.commit <= commit {
		floor, result = memo.commit, memo.command
	}
	for idx := commit; idx > floor; idx-- {
		var entry raft.Log
		if err := n.logs.GetLog(idx, &entry); err != nil {
			compacted, cerr := n.compacted(idx)
			if cerr != nil || !compacted {
				return 0, fmt.Errorf("read index: log entry %d: %w", idx, errors.Join(err, cerr))
			}
			// A compacted entry is inside a snapshot the state machine has already applied, so
			// the last command up to idx is at most the state machine's applied index.
			result = min(n.sm.AppliedIndex(), idx)
			break
		}
		if entry.Type == raft.LogCommand {
			result = idx
			break
		}
	}

	n.readIndex.mu.Lock()
	n.readIndex.lastScan.commit, n.readIndex.lastScan.command = commit, result
	n.readIndex.mu.Unlock()
	return result, nil
}

func (n *Node) compacted(idx uint64) (bool, error) {
	first, err := n.logs.FirstIndex()
	return idx < first, err
}

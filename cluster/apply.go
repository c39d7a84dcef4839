package cluster

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Apply proposes data as a command and returns the state machine's result for it once it is
// committed and applied here, and applied by every follower that holds a read lease (or that
// lease has ended). Leader only: a follower returns a *NotLeaderError (ErrNotLeader)
// naming the leader. ctx bounds the wait; an error from ctx, or one wrapping
// raft.ErrLeadershipLost, leaves the outcome unknown. Concurrent Applies share log appends and
// fsyncs, so throughput comes from concurrency.
func (n *Node) Apply(ctx context.Context, data []byte) (any, error) {
	if n.isShutdown() {
		return nil, ErrShutdown
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if n.raft.State() != raft.Leader {
		return nil, fmt.Errorf("apply: %w", n.notLeader())
	}
	f := n.raft.Apply(data, enqueueTimeout(ctx))
	if err := await(ctx, f); err != nil {
		return nil, n.translate("apply", err)
	}
	if err := n.waitLeasedFollowers(ctx, f.Index()); err != nil {
		return nil, fmt.Errorf("apply: committed, not yet acknowledged: %w", err)
	}
	return f.Response(), nil
}

package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Sentinel errors. Every error this package returns for one of these conditions wraps the sentinel,
// so callers test with errors.Is.
var (
	// ErrNotLeader: the operation must run on the leader and this node is not it. Errors carrying it
	// are usually a *NotLeaderError naming the leader, so a caller can forward.
	ErrNotLeader = errors.New("cluster: not the leader")

	// ErrNoLeader: no leader is known or reachable, so this node cannot prove its state is current.
	// A node in a partitioned minority returns it from ReadBarrier instead of serving stale state.
	ErrNoLeader = errors.New("cluster: no leader")

	// ErrAlreadyBootstrapped: Bootstrap was called on stores that already hold Raft state.
	ErrAlreadyBootstrapped = errors.New("cluster: already bootstrapped")

	// ErrUnknownServer: the server id is not in the Raft configuration.
	ErrUnknownServer = errors.New("cluster: unknown server")

	// ErrLastVoter: removing the server would leave the configuration without a voter,
	// which no operation could ever repair.
	ErrLastVoter = errors.New("cluster: refusing to remove the last voter")

	// ErrShutdown: the node has been shut down.
	ErrShutdown = errors.New("cluster: node is shut down")
)

// NotLeaderError is returned by leader-only operations on a follower. LeaderID and LeaderAddr are
// empty when no leader is known. It unwraps to ErrNotLeader.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (leader unknown)"
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// notLeader builds the error a follower returns, naming the leader it currently knows.
func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr)}
}

// translate maps raft's errors onto this package's sentinels. The raft error stays in the chain
// because ErrLeadershipLost means something different from a plain ErrNotLeader: the entry may
// still be committed by the next leader, so the outcome is unknown.
func (n *Node) translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%s: %w", op, n.notLeader())
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%s: outcome unknown: %w: %w", op, n.notLeader(), err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", op, ErrShutdown)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%s: %w: %w", op, context.DeadlineExceeded, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/internalpb"
)

// Retry pacing while no leader is known or leadership moves.
const (
	proposeRetryMin = 20 * time.Millisecond
	proposeRetryMax = 500 * time.Millisecond
)

// errRetryable marks a failure after which the command certainly was not
// applied, so proposing it again cannot apply it twice.
var errRetryable = errors.New("not applied; retry")

// propose stamps cmd and applies it on the region leader: locally when this
// node leads, otherwise forwarded over the Internal service. It retries only
// while the command was certainly not applied (no leader, not the leader);
// an ambiguous failure is returned as ErrNotServing, never retried.
func (s *Server) propose(ctx context.Context, cmd *fsmpb.Command) (*fsm.Result, error) {
	if cmd.TimeUnixNano == 0 {
		cmd.TimeUnixNano = s.now().UnixNano()
	}
	if cmd.Principal == "" {
		cmd.Principal = principal(ctx)
	}
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProposeTimeout)
	defer cancel()
	backoff := proposeRetryMin
	for {
		res, err := s.proposeOnce(ctx, data)
		if err == nil {
			if res.Err != nil {
				return res, res.Err
			}
			return res, nil
		}
		if !errors.Is(err, errRetryable) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no leader accepted the write in time: %v", ErrNotServing, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, proposeRetryMax)
	}
}

func (s *Server) proposeOnce(ctx context.Context, data []byte) (*fsm.Result, error) {
	if s.raft.IsLeader() {
		return s.applyLocal(ctx, data)
	}
	leaderID, _ := s.raft.Leader()
	if leaderID == "" {
		return nil, fmt.Errorf("%w: no leader known", errRetryable)
	}
	client, err := s.memberClient(leaderID)
	if err != nil {
		return nil, fmt.Errorf("%w: leader: %v", errRetryable, err)
	}
	resp, err := client.Apply(ctx, &internalpb.ApplyRequest{Command: data})
	if err != nil {
		return nil, forwardError(err)
	}
	return decodeApplyResponse(resp)
}

// applyLocal applies on this node, which believes it leads.
func (s *Server) applyLocal(ctx context.Context, data []byte) (*fsm.Result, error) {
	out, err := s.raft.Apply(ctx, data)
	if err != nil {
		if errors.Is(err, cluster.ErrNotLeader) {
			return nil, fmt.Errorf("%w: %v", errRetryable, err)
		}
		return nil, fmt.Errorf("%w: write outcome unknown: %v", ErrNotServing, err)
	}
	res, ok := out.(*fsm.Result)
	if !ok {
		return nil, fmt.Errorf("state machine returned %T", out)
	}
	return res, nil
}

// forwardError classifies a failed forward. FailedPrecondition is what the
// leader's Internal.Apply answers when it is not (or no longer) the leader
// before proposing, and Unavailable before the request was sent; both are
// safe to retry. Anything else may have been applied.
func forwardError(err error) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.FailedPrecondition:
		return fmt.Errorf("%w: %s", errRetryable, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%w: leader unreachable: %s", errRetryable, st.Message())
	case codes.DeadlineExceeded, codes.Canceled:
		return fmt.Errorf("%w: forwarded write outcome unknown: %s", ErrNotServing, st.Message())
	}
	return fmt.Errorf("%w: forwarded write failed: %s", ErrNotServing, st.Message())
}

func encodeApplyResponse(res *fsm.Result) (*internalpb.ApplyResponse, error) {
	resp := &internalpb.ApplyResponse{}
	var err error
	if res.Key != nil {
		if resp.Key, err = proto.Marshal(res.Key); err != nil {
			return nil, err
		}
	}
	if res.Alias != nil {
		if resp.Alias, err = proto.Marshal(res.Alias); err != nil {
			return nil, err
		}
	}
	if res.Grant != nil {
		if resp.Grant, err = proto.Marshal(res.Grant); err != nil {
			return nil, err
		}
	}
	if res.Err != nil {
		var rej *fsm.RejectError
		if !errors.As(res.Err, &rej) {
			return nil, fmt.Errorf("state machine error of type %T", res.Err)
		}
		resp.RejectKind = fsm.RejectKindName(rej.Kind)
		resp.RejectMessage = rej.Msg
	}
	return resp, nil
}

func decodeApplyResponse(resp *internalpb.ApplyResponse) (*fsm.Result, error) {
	res := &fsm.Result{}
	if len(resp.GetKey()) > 0 {
		res.Key = &fsmpb.Key{}
		if err := proto.Unmarshal(resp.GetKey(), res.Key); err != nil {
			return nil, fmt.Errorf("decode forwarded key: %w", err)
		}
	}
	if len(resp.GetAlias()) > 0 {
		res.Alias = &fsmpb.Alias{}
		if err := proto.Unmarshal(resp.GetAlias(), res.Alias); err != nil {
			return nil, fmt.Errorf("decode forwarded alias: %w", err)
		}
	}
	if len(resp.GetGrant()) > 0 {
		res.Grant = &fsmpb.Grant{}
		if err := proto.Unmarshal(resp.GetGrant(), res.Grant); err != nil {
			return nil, fmt.Errorf("decode forwarded grant: %w", err)
		}
	}
	if resp.GetRejectKind() != "" {
		res.Err = fsm.NewRejectError(fsm.RejectKindByName(resp.GetRejectKind()), resp.GetRejectMessage())
	}
	return res, nil
}

// fetchReadIndex is the follower side of a read-index round: ask the leader
// for its read index and a read lease. cluster batches concurrent callers
// into one call.
func (s *Server) fetchReadIndex(ctx context.Context, leaderID string, applied uint64) (cluster.ReadIndexReply, error) {
	client, err := s.memberClient(leaderID)
	if err != nil {
		return cluster.ReadIndexReply{}, fmt.Errorf("%w: leader: %v", cluster.ErrNoLeader, err)
	}
	resp, err := client.ReadIndex(ctx, &internalpb.ReadIndexRequest{AppliedIndex: &applied, WantLease: true})
	if err != nil {
		return cluster.ReadIndexReply{}, fmt.Errorf("%w: read index from %s: %v", cluster.ErrNoLeader, leaderID, status.Convert(err).Message())
	}
	return cluster.ReadIndexReply{Index: resp.GetIndex(), LeaseTerm: resp.GetLeaseTerm()}, nil
}

// waitFollowerApplied is the leader's call to a follower that holds a read
// lease: answer once you have applied index.
func (s *Server) waitFollowerApplied(ctx context.Context, nodeID string, index uint64) (uint64, error) {
	client, err := s.memberClient(nodeID)
	if err != nil {
		return 0, err
	}
	resp, err := client.WaitApplied(ctx, &internalpb.WaitAppliedRequest{Index: index})
	if err != nil {
		return 0, fmt.Errorf("wait for %s to apply %d: %v", nodeID, index, status.Convert(err).Message())
	}
	return resp.GetAppliedIndex(), nil
}

// memberClient is the Internal service of region member nodeID.
func (s *Server) memberClient(nodeID string) (internalpb.InternalClient, error) {
	node, ok := s.fsm.Node(nodeID)
	if !ok || node.GetGrpcAddr() == "" {
		return nil, fmt.Errorf("node %s has no known address", nodeID)
	}
	return s.peers.internal(node.GetGrpcAddr())
}

package transport

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/internalpb"
	"github.com/trent-kms/trent/transport/pki"
)

// internalService answers other nodes of the region. Its error statuses are
// part of the forwarding protocol (see forwardError): FailedPrecondition
// means "not applied, ask the leader again".
type internalService struct {
	internalpb.UnimplementedInternalServer
	s *Server
}

func (in *internalService) Apply(ctx context.Context, req *internalpb.ApplyRequest) (*internalpb.ApplyResponse, error) {
	if !in.s.raft.IsLeader() {
		return nil, status.Error(codes.FailedPrecondition, "not the leader")
	}
	res, err := in.s.applyLocal(ctx, req.GetCommand())
	if err != nil {
		if errors.Is(err, errRetryable) {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp, err := encodeApplyResponse(res)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return resp, nil
}

func (in *internalService) ReadIndex(ctx context.Context, req *internalpb.ReadIndexRequest) (*internalpb.ReadIndexResponse, error) {
	if req.AppliedIndex == nil {
		// An older follower: it cannot say how far it is, nor hold a lease.
		idx, err := in.s.raft.LeaderReadIndex(ctx)
		if err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return &internalpb.ReadIndexResponse{Index: idx}, nil
	}
	var follower string
	if req.GetWantLease() {
		// The authentication interceptor admits only member node certificates here.
		if id, err := peerIdentity(ctx); err == nil && id.Kind == pki.KindNode {
			follower = id.NodeID
		}
	}
	reply, err := in.s.raft.ServeReadIndex(ctx, follower, req.GetAppliedIndex())
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &internalpb.ReadIndexResponse{Index: reply.Index, LeaseTerm: reply.LeaseTerm}, nil
}

// WaitApplied answers the leader once this node has applied the index, so
// the leader can acknowledge a write while this node holds a read lease.
func (in *internalService) WaitApplied(ctx context.Context, req *internalpb.WaitAppliedRequest) (*internalpb.WaitAppliedResponse, error) {
	// The leader asks with its lease's deadline; a call without one, or for
	// an index this node never reaches, still ends like a write would.
	ctx, cancel := context.WithTimeout(ctx, in.s.cfg.ProposeTimeout)
	defer cancel()
	applied, err := in.s.raft.WaitApplied(ctx, req.GetIndex())
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &internalpb.WaitAppliedResponse{AppliedIndex: applied}, nil
}

func (in *internalService) NodeInfo(context.Context, *internalpb.NodeInfoRequest) (*internalpb.NodeInfoResponse, error) {
	return &internalpb.NodeInfoResponse{
		NodeId:       in.s.cfg.NodeID,
		AppliedIndex: in.s.fsm.AppliedIndex(),
		Hsm:          in.s.hsm.Kind(),
	}, nil
}

// RemoveNode is Cluster.RemoveNode passed on by a follower, which has
// already authorized the admin who asked.
func (in *internalService) RemoveNode(ctx context.Context, req *internalpb.RemoveNodeRequest) (*internalpb.RemoveNodeResponse, error) {
	if req.GetNodeId() == "" {
		return nil, statusFor(invalid("NodeId", "is required"))
	}
	if !in.s.raft.IsLeader() {
		return nil, statusFor(fmt.Errorf("%w: this node is no longer the leader", cluster.ErrNotLeader))
	}
	if err := in.s.removeNode(ctx, req.GetNodeId()); err != nil {
		return nil, statusFor(err)
	}
	return &internalpb.RemoveNodeResponse{}, nil
}

// Join admits a node to the region. Any member can be asked; a follower
// passes the request to the leader, which checks the join secret, records
// the node's addresses, adds it to Raft and wraps the region's domain keys to
// the joiner's HSM transport key.
func (in *internalService) Join(ctx context.Context, req *internalpb.JoinRequest) (*internalpb.JoinResponse, error) {
	s := in.s
	if reason := s.joinRefusal(ctx, req.GetNodeId()); reason != "" {
		s.log.Warn("join refused", "node", req.GetNodeId(), "remote", remoteAddrOf(ctx), "reason", reason)
		return nil, status.Error(codes.PermissionDenied, "AccessDeniedException: "+reason)
	}
	if !s.joinSecretMatches(req.GetJoinSecret()) {
		s.log.Warn("join refused: wrong join secret", "node", req.GetNodeId(), "raft_addr", req.GetRaftAddr())
		return nil, status.Error(codes.PermissionDenied, "AccessDeniedException: join secret does not match this region's")
	}
	if err := validateJoin(req); err != nil {
		return nil, statusFor(err)
	}
	if !s.raft.IsLeader() {
		return in.forwardJoin(ctx, req)
	}
	wrapped := make([]*internalpb.WrappedDomainKey, 0, len(s.fsm.DomainKeys()))
	for _, dk := range s.fsm.DomainKeys() {
		blob, err := s.hsm.ExportDomainKey(ctx, dk.GetId(), req.GetTransportPublicKey())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "ValidationException: TransportPublicKey: cannot wrap domain key %s to it: %v", dk.GetId(), err)
		}
		wrapped = append(wrapped, &internalpb.WrappedDomainKey{Id: dk.GetId(), Wrapped: blob})
	}
	node := &fsmpb.Node{Id: req.GetNodeId(), RaftAddr: req.GetRaftAddr(), GrpcAddr: req.GetGrpcAddr()}
	if _, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_RegisterNode{RegisterNode: &fsmpb.RegisterNode{Node: node}}}); err != nil {
		return nil, statusFor(err)
	}
	suffrage, err := s.addJoiner(ctx, req.GetNodeId(), req.GetRaftAddr())
	if err != nil {
		return nil, statusFor(fmt.Errorf("%w: add %s %s: %v", ErrNotServing, suffrage, req.GetNodeId(), err))
	}
	s.log.Info("node joined", "node", req.GetNodeId(), "suffrage", suffrage, "raft_addr", req.GetRaftAddr(), "grpc_addr", req.GetGrpcAddr())
	return &internalpb.JoinResponse{Region: s.region(), DomainKeys: wrapped}, nil
}

func (in *internalService) forwardJoin(ctx context.Context, req *internalpb.JoinRequest) (*internalpb.JoinResponse, error) {
	leaderID, err := in.s.raft.WaitForLeader(ctx)
	if err != nil {
		return nil, statusFor(fmt.Errorf("%w: %v", cluster.ErrNoLeader, err))
	}
	client, err := in.s.memberClient(leaderID)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "KMSInternalException: leader: %v", err)
	}
	return client.Join(ctx, req)
}

func (s *Server) joinSecretMatches(given []byte) bool {
	if len(s.cfg.JoinSecret) == 0 || len(given) == 0 {
		return false
	}
	want := sha256.Sum256(s.cfg.JoinSecret)
	got := sha256.Sum256(given)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

func validateJoin(req *internalpb.JoinRequest) error {
	switch {
	case req.GetNodeId() == "":
		return invalid("NodeId", "is required")
	case req.GetRaftAddr() == "":
		return invalid("RaftAddr", "is required")
	case req.GetGrpcAddr() == "":
		return invalid("GrpcAddr", "is required")
	case len(req.GetTransportPublicKey()) == 0:
		return invalid("TransportPublicKey", "is required")
	}
	return nil
}

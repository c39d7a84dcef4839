package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

func (s *Server) Status(ctx context.Context, _ *kmspb.ClusterStatusRequest) (*kmspb.ClusterStatusResponse, error) {
	if err := s.authorize(ctx, actionClusterStatus, nil); err != nil {
		return nil, err
	}
	servers, err := s.raft.Servers()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotServing, err)
	}
	leaderID, _ := s.raft.Leader()
	resp := &kmspb.ClusterStatusResponse{
		Region:       s.region(),
		NodeId:       s.cfg.NodeID,
		LeaderId:     leaderID,
		AppliedIndex: s.fsm.AppliedIndex(),
		CommitIndex:  s.raft.CommitIndex(),
		Hsm:          s.hsm.Kind(),
	}
	for _, srv := range servers {
		ns := &kmspb.NodeStatus{Id: srv.ID, RaftAddress: srv.Address, Suffrage: srv.Suffrage.String(), Leader: srv.ID == leaderID}
		if n, ok := s.fsm.Node(srv.ID); ok {
			ns.GrpcAddress = n.GetGrpcAddr()
		}
		resp.Nodes = append(resp.Nodes, ns)
	}
	return resp, nil
}

// RemoveNode takes a node out of the region's Raft configuration and node
// registry. A follower passes the call to the leader.
func (s *Server) RemoveNode(ctx context.Context, req *kmspb.RemoveNodeRequest) (*kmspb.RemoveNodeResponse, error) {
	if req.GetNodeId() == "" {
		return nil, invalid("NodeId", "is required")
	}
	if err := s.authorize(ctx, actionRemoveNode, nil); err != nil {
		return nil, err
	}
	if !s.raft.IsLeader() {
		leaderID, err := s.raft.WaitForLeader(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", cluster.ErrNoLeader, err)
		}
		node, ok := s.fsm.Node(leaderID)
		if !ok {
			return nil, fmt.Errorf("%w: leader %s has no known address", ErrNotServing, leaderID)
		}
		conn, err := s.peers.conn(node.GetGrpcAddr())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotServing, err)
		}
		return kmspb.NewClusterClient(conn).RemoveNode(ctx, req)
	}
	if err := s.raft.RemoveServer(ctx, req.GetNodeId()); err != nil {
		if errors.Is(err, cluster.ErrUnknownServer) {
			return nil, fmt.Errorf("%w: node %s is not a member of this region", fsm.ErrNotFound, req.GetNodeId())
		}
		return nil, err
	}
	if _, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_DeregisterNode{DeregisterNode: &fsmpb.DeregisterNode{Id: req.GetNodeId()}}}); err != nil {
		return nil, err
	}
	s.log.Info("node removed", "node", req.GetNodeId())
	return &kmspb.RemoveNodeResponse{}, nil
}

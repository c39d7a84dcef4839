package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/internalpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

func (s *Server) Status(ctx context.Context, _ *kmspb.ClusterStatusRequest) (*kmspb.ClusterStatusResponse, error) {
	if err := s.authorize(ctx, access{action: actionClusterStatus}); err != nil {
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
	if err := s.authorize(ctx, access{action: actionRemoveNode}); err != nil {
		return nil, err
	}
	if !s.raft.IsLeader() {
		return s.forwardRemoveNode(ctx, req.GetNodeId())
	}
	if err := s.removeNode(ctx, req.GetNodeId()); err != nil {
		return nil, err
	}
	return &kmspb.RemoveNodeResponse{}, nil
}

// forwardRemoveNode passes a removal to the leader over the Internal
// service: the leader's public Cluster service takes admin certificates, not
// this node's.
func (s *Server) forwardRemoveNode(ctx context.Context, nodeID string) (*kmspb.RemoveNodeResponse, error) {
	leaderID, err := s.raft.WaitForLeader(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", cluster.ErrNoLeader, err)
	}
	node, ok := s.fsm.Node(leaderID)
	if !ok {
		return nil, fmt.Errorf("%w: leader %s has no known address", ErrNotServing, leaderID)
	}
	client, err := s.peers.internal(node.GetGrpcAddr())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotServing, err)
	}
	if _, err := client.RemoveNode(ctx, &internalpb.RemoveNodeRequest{NodeId: nodeID}); err != nil {
		return nil, err
	}
	return &kmspb.RemoveNodeResponse{}, nil
}

// removeNode runs on the leader: it takes nodeID out of the Raft
// configuration, then out of the node registry.
func (s *Server) removeNode(ctx context.Context, nodeID string) error {
	if err := s.raft.RemoveServer(ctx, nodeID); err != nil {
		if errors.Is(err, cluster.ErrUnknownServer) {
			return fmt.Errorf("%w: node %s is not a member of this region", fsm.ErrNotFound, nodeID)
		}
		return err
	}
	if _, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_DeregisterNode{DeregisterNode: &fsmpb.DeregisterNode{Id: nodeID}}}); err != nil {
		return err
	}
	s.log.Info("node removed", "node", nodeID)
	return nil
}

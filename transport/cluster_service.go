package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/regions/membership"
	"github.com/trent-kms/trent/transport/internalpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

// Gossip is the node's view of its gossip pools; *membership.Membership
// implements it.
type Gossip interface {
	LANMembers() []membership.Member
	WANMembers() []membership.Member
	RegionLeaders() map[string]membership.Member
}

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
	if g := s.cfg.Gossip; g != nil {
		resp.LanMembers = gossipMembers(g.LANMembers())
		resp.WanMembers = gossipMembers(g.WANMembers())
		leaders := g.RegionLeaders()
		for region, m := range leaders {
			resp.RegionLeaders = append(resp.RegionLeaders, &kmspb.RegionLeader{Region: region, NodeId: m.ID, GrpcAddress: m.GRPCAddr})
		}
		slices.SortFunc(resp.RegionLeaders, func(a, b *kmspb.RegionLeader) int { return strings.Compare(a.GetRegion(), b.GetRegion()) })
	}
	resp.Replication = s.replicationStatus()
	return resp, nil
}

func gossipMembers(members []membership.Member) []*kmspb.GossipMember {
	out := make([]*kmspb.GossipMember, 0, len(members))
	for _, m := range members {
		out = append(out, &kmspb.GossipMember{
			Id:            m.ID,
			Region:        m.Region,
			Role:          m.Role.String(),
			Status:        m.Status.String(),
			GrpcAddress:   m.GRPCAddr,
			GossipAddress: m.GossipAddr,
			Leader:        m.Leader,
		})
	}
	return out
}

// AdmitServer adds back, or promotes, a server the region admitted before:
// one whose node registry entry names raftAddr. Like Join it adds a voter
// while the configuration has fewer than MaxVoters other voters, else a
// nonvoter, and never demotes a voter. Leader only; it returns the suffrage
// it asked for. A node removed with RemoveNode is out of the registry, so it
// cannot be admitted this way.
func (s *Server) AdmitServer(ctx context.Context, id, raftAddr string) (cluster.Suffrage, error) {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if n, ok := s.fsm.Node(id); !ok || n.GetRaftAddr() != raftAddr {
		return cluster.Nonvoter, fmt.Errorf("%w: node %s is not registered at %s", fsm.ErrNotFound, id, raftAddr)
	}
	return s.addServer(ctx, id, raftAddr)
}

// addJoiner adds a node Join has just registered.
func (s *Server) addJoiner(ctx context.Context, id, raftAddr string) (cluster.Suffrage, error) {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	return s.addServer(ctx, id, raftAddr)
}

// addServer decides the suffrage and adds; the caller holds joinMu.
func (s *Server) addServer(ctx context.Context, id, raftAddr string) (cluster.Suffrage, error) {
	if s.cfg.MaxVoters <= 0 {
		return cluster.Voter, s.raft.AddVoter(ctx, id, raftAddr)
	}
	servers, err := s.raft.Servers()
	if err != nil {
		return cluster.Voter, err
	}
	voters, isVoter := 0, false
	for _, srv := range servers {
		switch {
		case srv.Suffrage != cluster.Voter:
		case srv.ID == id:
			isVoter = true
		default:
			voters++
		}
	}
	if isVoter || voters < s.cfg.MaxVoters {
		return cluster.Voter, s.raft.AddVoter(ctx, id, raftAddr)
	}
	return cluster.Nonvoter, s.raft.AddNonvoter(ctx, id, raftAddr)
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
	client, err := s.memberClient(leaderID)
	if err != nil {
		return nil, fmt.Errorf("%w: leader: %v", ErrNotServing, err)
	}
	if _, err := client.RemoveNode(ctx, &internalpb.RemoveNodeRequest{NodeId: nodeID}); err != nil {
		return nil, err
	}
	return &kmspb.RemoveNodeResponse{}, nil
}

// removeNode runs on the leader: it takes nodeID out of the Raft
// configuration, then out of the node registry.
func (s *Server) removeNode(ctx context.Context, nodeID string) error {
	// Held across both steps so that AdmitServer, which admits registered
	// nodes, cannot add the node back between them.
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
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

package main

import "github.com/trent-kms/trent/transport/kmspb"

// Cluster commands are Trent's own (aws kms has no counterpart); they share
// the output conventions of the rest.
var clusterCommands = []*command{
	{
		name: "cluster status", op: "Status",
		summary: "Show the nodes of the region, its leader, the answering node's progress and, with gossip, both gossip pools and each region's leader.",
		run: func(r *request) (any, error) {
			resp, err := r.cluster.Status(r.ctx, &kmspb.ClusterStatusRequest{})
			if err != nil {
				return nil, err
			}
			out := clusterStatusOutput{
				Region:       resp.GetRegion(),
				NodeID:       resp.GetNodeId(),
				LeaderID:     resp.GetLeaderId(),
				AppliedIndex: resp.GetAppliedIndex(),
				CommitIndex:  resp.GetCommitIndex(),
				HSM:          resp.GetHsm(),
				Nodes:        []nodeStatusJSON{},
			}
			for _, n := range resp.GetNodes() {
				out.Nodes = append(out.Nodes, nodeStatusJSON{
					NodeID:      n.GetId(),
					RaftAddress: n.GetRaftAddress(),
					GrpcAddress: n.GetGrpcAddress(),
					Suffrage:    n.GetSuffrage(),
					Leader:      n.GetLeader(),
				})
			}
			return withGossip(out, resp), nil
		},
	},
	{
		name: "cluster remove-node", op: "RemoveNode",
		summary: "Remove a node from the region's membership.",
		flags: []flagSpec{
			{name: "node-id", kind: kindString, required: true, metavar: "ID", usage: "id of the node to remove, as cluster status shows it"},
		},
		run: func(r *request) (any, error) {
			_, err := r.cluster.RemoveNode(r.ctx, &kmspb.RemoveNodeRequest{NodeId: r.flags.str("node-id")})
			return nil, err
		},
	},
}

// clusterStatusGossipOutput adds the gossip view to cluster status. A node
// without gossip answers with none, and the output is clusterStatusOutput's
// alone.
type clusterStatusGossipOutput struct {
	clusterStatusOutput
	LanMembers    []gossipMemberJSON `json:"LanMembers"`
	WanMembers    []gossipMemberJSON `json:"WanMembers"`
	RegionLeaders []regionLeaderJSON `json:"RegionLeaders"`
	// Replication to other regions; omitted when this region has none.
	Replication []replicationJSON `json:"Replication,omitempty"`
}

type replicationJSON struct {
	Region          string  `json:"Region"`
	KeysBehind      uint32  `json:"KeysBehind"`
	PendingChanges  uint64  `json:"PendingChanges"`
	LagMillis       int64   `json:"LagMillis"`
	KeysToSendBack  uint32  `json:"KeysToSendBack"`
	LastError       string  `json:"LastError,omitempty"`
	LastErrorTime   float64 `json:"LastErrorTime,omitempty"`
	LastSuccessTime float64 `json:"LastSuccessTime,omitempty"`
}

type gossipMemberJSON struct {
	NodeID        string `json:"NodeId"`
	Region        string `json:"Region"`
	Role          string `json:"Role"`
	Status        string `json:"Status"`
	GrpcAddress   string `json:"GrpcAddress"`
	GossipAddress string `json:"GossipAddress"`
	Leader        bool   `json:"Leader"`
}

type regionLeaderJSON struct {
	Region      string `json:"Region"`
	NodeID      string `json:"NodeId"`
	GrpcAddress string `json:"GrpcAddress"`
}

func withGossip(out clusterStatusOutput, resp *kmspb.ClusterStatusResponse) any {
	// A node with gossip lists itself in both pools.
	if len(resp.GetLanMembers()) == 0 && len(resp.GetWanMembers()) == 0 {
		return out
	}
	g := clusterStatusGossipOutput{
		clusterStatusOutput: out,
		LanMembers:          gossipMembersJSON(resp.GetLanMembers()),
		WanMembers:          gossipMembersJSON(resp.GetWanMembers()),
		RegionLeaders:       []regionLeaderJSON{},
	}
	for _, l := range resp.GetRegionLeaders() {
		g.RegionLeaders = append(g.RegionLeaders, regionLeaderJSON{Region: l.GetRegion(), NodeID: l.GetNodeId(), GrpcAddress: l.GetGrpcAddress()})
	}
	for _, d := range resp.GetReplication() {
		g.Replication = append(g.Replication, replicationJSON{
			Region: d.GetRegion(), KeysBehind: d.GetKeysBehind(), PendingChanges: d.GetPendingChanges(),
			LagMillis: d.GetLagMillis(), KeysToSendBack: d.GetKeysToSendBack(), LastError: d.GetLastError(),
			LastErrorTime: d.GetLastErrorTime(), LastSuccessTime: d.GetLastSuccessTime(),
		})
	}
	return g
}

func gossipMembersJSON(members []*kmspb.GossipMember) []gossipMemberJSON {
	out := []gossipMemberJSON{}
	for _, m := range members {
		out = append(out, gossipMemberJSON{
			NodeID:        m.GetId(),
			Region:        m.GetRegion(),
			Role:          m.GetRole(),
			Status:        m.GetStatus(),
			GrpcAddress:   m.GetGrpcAddress(),
			GossipAddress: m.GetGossipAddress(),
			Leader:        m.GetLeader(),
		})
	}
	return out
}

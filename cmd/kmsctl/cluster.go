package main

import "github.com/trent-kms/trent/transport/kmspb"

// Cluster commands are Trent's own (aws kms has no counterpart); they share
// the output conventions of the rest.
var clusterCommands = []*command{
	{
		name: "cluster status", op: "Status",
		summary: "Show the nodes of the region, its leader and the answering node's progress.",
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
			return out, nil
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

package main

import (
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

func TestClusterStatusWithGossip(t *testing.T) {
	ts := startServer(t)
	ts.cluster.reply("Status", &kmspb.ClusterStatusResponse{
		Region: "eu-1", NodeId: "n1", LeaderId: "n1", AppliedIndex: 7, CommitIndex: 7, Hsm: "soft",
		Nodes: []*kmspb.NodeStatus{{Id: "n1", RaftAddress: "10.0.0.1:7421", GrpcAddress: "10.0.0.1:7420", Suffrage: "voter", Leader: true}},
		LanMembers: []*kmspb.GossipMember{
			{Id: "n1", Region: "eu-1", Role: "voter", Status: "alive", GrpcAddress: "10.0.0.1:7420", GossipAddress: "10.0.0.1:7422", Leader: true},
			{Id: "n2", Region: "eu-1", Role: "voter", Status: "dead", GrpcAddress: "10.0.0.2:7420", GossipAddress: "10.0.0.2:7422"},
		},
		WanMembers: []*kmspb.GossipMember{
			{Id: "n1", Region: "eu-1", Role: "voter", Status: "alive", GrpcAddress: "10.0.0.1:7420", GossipAddress: "10.0.0.1:7423", Leader: true},
			{Id: "u1", Region: "us-1", Role: "voter", Status: "suspect", GrpcAddress: "10.1.0.1:7420", GossipAddress: "10.1.0.1:7423", Leader: true},
		},
		RegionLeaders: []*kmspb.RegionLeader{
			{Region: "eu-1", NodeId: "n1", GrpcAddress: "10.0.0.1:7420"},
			{Region: "us-1", NodeId: "u1", GrpcAddress: "10.1.0.1:7420"},
		},
	})

	r := ts.run("cluster", "status", "--query", "LanMembers[].Status").mustSucceed(t)
	wantOutput(t, r.stdout, "[\n    \"alive\",\n    \"dead\"\n]\n")
	r = ts.run("cluster", "status", "--query", "Nodes[0].NodeId", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "n1\n")
	r = ts.run("cluster", "status", "--query", "WanMembers[1]").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "NodeId": "u1",
    "Region": "us-1",
    "Role": "voter",
    "Status": "suspect",
    "GrpcAddress": "10.1.0.1:7420",
    "GossipAddress": "10.1.0.1:7423",
    "Leader": true
}
`)
	r = ts.run("cluster", "status", "--query", "RegionLeaders", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "10.0.0.1:7420\tn1\teu-1\n10.1.0.1:7420\tu1\tus-1\n")
}

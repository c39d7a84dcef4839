package main

import (
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

func TestClusterStatus(t *testing.T) {
	ts := startServer(t)
	ts.cluster.reply("Status", &kmspb.ClusterStatusResponse{
		Region: "eu-1", NodeId: "n1", LeaderId: "n2", AppliedIndex: 41, CommitIndex: 42, Hsm: "softhsm",
		Nodes: []*kmspb.NodeStatus{
			{Id: "n1", RaftAddress: "10.0.0.1:7421", GrpcAddress: "10.0.0.1:7420", Suffrage: "Voter"},
			{Id: "n2", RaftAddress: "10.0.0.2:7421", GrpcAddress: "10.0.0.2:7420", Suffrage: "Voter", Leader: true},
		},
	})

	r := ts.run("cluster", "status").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "Region": "eu-1",
    "NodeId": "n1",
    "LeaderId": "n2",
    "AppliedIndex": 41,
    "CommitIndex": 42,
    "HSM": "softhsm",
    "Nodes": [
        {
            "NodeId": "n1",
            "RaftAddress": "10.0.0.1:7421",
            "GrpcAddress": "10.0.0.1:7420",
            "Suffrage": "Voter",
            "Leader": false
        },
        {
            "NodeId": "n2",
            "RaftAddress": "10.0.0.2:7421",
            "GrpcAddress": "10.0.0.2:7420",
            "Suffrage": "Voter",
            "Leader": true
        }
    ]
}
`)
	r = ts.run("cluster", "status", "--query", "Nodes[1].GrpcAddress", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "10.0.0.2:7420\n")
	wantRequests(t, &ts.cluster.fake, &kmspb.ClusterStatusRequest{}, &kmspb.ClusterStatusRequest{})
}

func TestClusterRemoveNode(t *testing.T) {
	ts := startServer(t)

	wantOutput(t, ts.run("cluster", "remove-node", "--node-id", "n3").mustSucceed(t).stdout, "")

	r := ts.run("cluster", "remove-node")
	if r.code != exitUsage {
		t.Errorf("without --node-id: exit %d, want %d", r.code, exitUsage)
	}
	wantOutput(t, r.stderr, "kmsctl: error: the following arguments are required: --node-id\nSee 'kmsctl cluster remove-node --help'.\n")

	wantRequests(t, &ts.cluster.fake, &kmspb.RemoveNodeRequest{NodeId: "n3"})
}

func TestClusterWithoutSubcommand(t *testing.T) {
	for _, args := range [][]string{{"cluster"}, {"cluster", "frob"}} {
		r := runKmsctl("", args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, r.code, exitUsage)
		}
	}
	r := runKmsctl("", "cluster")
	wantOutput(t, r.stderr, "kmsctl: error: cluster needs a subcommand: status or remove-node\nSee 'kmsctl cluster --help'.\n")
}

package node_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport"
	"github.com/trent-kms/trent/transport/kmspb"
)

func TestJoinWithoutTheJoinSecretIsRefused(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong-secret")
	if err := os.WriteFile(wrong, []byte("not-the-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := node.Config{
		DataDir:        filepath.Join(dir, "intruder"),
		NodeID:         "intruder",
		Join:           r.Node(0).GRPCAddr(),
		JoinSecretFile: wrong,
	}
	r.IssueNodeCert(&cfg) // a valid certificate of the region, but not the secret
	_, err := node.Start(ctx, cfg)
	if !errors.Is(err, transport.ErrJoinRefused) {
		t.Fatalf("join with a wrong secret: %v, want ErrJoinRefused", err)
	}
	status, err := r.Cluster(0).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(status.GetNodes()) != 1 {
		t.Fatalf("refused node was added: %v", status.GetNodes())
	}
}

func TestRemoveNodeThroughAFollower(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	followers := r.Followers()
	victim := r.Node(followers[1]).ID()
	r.Stop(followers[1])
	if _, err := r.Cluster(followers[0]).RemoveNode(ctxT(t), &kmspb.RemoveNodeRequest{NodeId: victim}); err != nil {
		t.Fatalf("RemoveNode: %v", err)
	}
	status, err := r.Cluster(r.Leader()).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(status.GetNodes()) != 2 {
		t.Fatalf("after removal: %v", status.GetNodes())
	}
	// Two voters remain and both are up: the region still takes writes.
	createKey(t, r.KMS(followers[0]), "")
	if _, err := r.Cluster(followers[0]).RemoveNode(ctxT(t), &kmspb.RemoveNodeRequest{NodeId: "nobody"}); err == nil {
		t.Fatal("removing an unknown node succeeded")
	}
}

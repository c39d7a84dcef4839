package node_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/regions/membership"
	"github.com/trent-kms/trent/transport"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// gossipWait is generous: the suite must pass under -race on a loaded 2-core machine, where
// gossip that converges in a second on an idle one can take several.
const gossipWait = 20 * time.Second

// gossipKeyFile writes a gossip keyring every node of a test shares.
func gossipKeyFile(t testing.TB) string {
	t.Helper()
	k, err := node.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "gossip-key")
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testGossip is gossip on loopback with fast timing: a failure is detected in about a second.
// Dead-server cleanup keeps its default, so that a node the loaded machine starves long enough
// to look dead is not removed from under a test that is not about cleanup.
func testGossip(keyFile string, seeds ...string) *node.GossipConfig {
	return &node.GossipConfig{
		LANBind:             "127.0.0.1:0",
		WANBind:             "127.0.0.1:0",
		KeyFile:             keyFile,
		RetryJoin:           seeds,
		Voters:              3,
		ServerStabilization: 500 * time.Millisecond,
		RetryInterval:       100 * time.Millisecond,
		Profile:             membership.ProfileFast,
	}
}

// gossipRegion starts node0 of a region with gossip, then seedOnly nodes that know nothing but
// node0's LAN gossip address (and the join secret).
func gossipRegion(t *testing.T, keyFile, region string, seedOnly int, configure ...func(cfg *node.Config)) *nodetest.Region {
	t.Helper()
	r := nodetest.StartRegion(t, nodetest.Options{
		Nodes:  1,
		Region: region,
		Configure: func(_ int, cfg *node.Config) {
			cfg.Gossip = testGossip(keyFile)
			gossipRaftTiming(cfg)
			for _, f := range configure {
				f(cfg)
			}
		},
	})
	seed := r.Node(0).GossipLANAddr()
	for range seedOnly {
		r.AddNode(func(cfg *node.Config) {
			cfg.Join = ""
			cfg.Gossip.RetryJoin = []string{seed}
		})
	}
	return r
}

// regionWithWANSeed starts a one-node region with gossip that joins the WAN pool through seed.
func regionWithWANSeed(t *testing.T, keyFile, region, seed string) *nodetest.Region {
	t.Helper()
	return nodetest.StartRegion(t, nodetest.Options{
		Nodes:  1,
		Region: region,
		Configure: func(_ int, cfg *node.Config) {
			cfg.Gossip = testGossip(keyFile)
			cfg.Gossip.WANJoin = []string{seed}
			gossipRaftTiming(cfg)
		},
	})
}

// gossipRaftTiming lengthens nodetest's 400ms Raft timeouts: fast gossip adds enough load that,
// on a loaded 2-core machine under the race detector, a region would hold election after
// election. None of these tests waits for a leader to fail over.
func gossipRaftTiming(cfg *node.Config) {
	cfg.RaftHeartbeatTimeout = time.Second
	cfg.RaftElectionTimeout = time.Second
	cfg.ReadRetry = 3 * time.Second
	cfg.ProposeTimeout = 5 * time.Second
}

func clusterStatus(t *testing.T, r *nodetest.Region, i int) *kmspb.ClusterStatusResponse {
	t.Helper()
	st, err := r.Cluster(i).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
	if err != nil {
		t.Fatalf("Status on node%d: %v", i, err)
	}
	return st
}

// suffrages maps each node of the Raft configuration to its suffrage.
func suffrages(st *kmspb.ClusterStatusResponse) map[string]string {
	out := make(map[string]string)
	for _, n := range st.GetNodes() {
		out[n.GetId()] = n.GetSuffrage()
	}
	return out
}

func gossipMember(members []*kmspb.GossipMember, id string) *kmspb.GossipMember {
	for _, m := range members {
		if m.GetId() == id {
			return m
		}
	}
	return nil
}

func TestNodesWithOnlyASeedJoinTheirRegion(t *testing.T) {
	keys := gossipKeyFile(t)
	r := gossipRegion(t, keys, nodetest.RegionName, 3)

	// The leader admits voters up to Voters (3), then nonvoters.
	want := map[string]string{"node0": "voter", "node1": "voter", "node2": "voter", "node3": "nonvoter"}
	st := clusterStatus(t, r, r.Leader())
	if got := suffrages(st); !maps.Equal(got, want) {
		t.Fatalf("raft configuration %v, want %v", got, want)
	}
	for i := range r.Len() {
		if got := r.Node(i).Region(); got != nodetest.RegionName {
			t.Errorf("node%d is in region %q, want %q", i, got, nodetest.RegionName)
		}
	}
	// Each node announces the suffrage it was given.
	nodetest.WaitFor(t, gossipWait, "node0 to see every member with its role", func() bool {
		st := clusterStatus(t, r, 0)
		for id, suffrage := range want {
			m := gossipMember(st.GetLanMembers(), id)
			if m == nil || m.GetStatus() != "alive" || m.GetRole() != suffrage || m.GetRegion() != nodetest.RegionName {
				return false
			}
		}
		return len(st.GetLanMembers()) == len(want)
	})
	seed := r.Node(0).GossipLANAddr()

	t.Run("without the join secret", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "wrong-secret")
		if err := os.WriteFile(wrong, []byte("not-the-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := node.Config{DataDir: filepath.Join(t.TempDir(), "intruder"), NodeID: "intruder", JoinSecretFile: wrong, Gossip: testGossip(keys, seed)}
		r.IssueNodeCert(&cfg)
		ctx, cancel := context.WithTimeout(context.Background(), gossipWait)
		defer cancel()
		if n, err := node.Start(ctx, cfg); !errors.Is(err, transport.ErrJoinRefused) {
			if n != nil {
				_ = n.Close(context.Background())
			}
			t.Fatalf("seed-only join with a wrong secret: %v, want ErrJoinRefused", err)
		}
	})

	t.Run("from another region", func(t *testing.T) {
		// A valid certificate of the same CA and the right secret and gossip key, but for
		// another region: the LAN pool refuses it, so it never finds a member to ask.
		dir := t.TempDir()
		ca, err := pki.LoadCA(r.CADir())
		if err != nil {
			t.Fatal(err)
		}
		certs := filepath.Join(dir, "certs")
		if err := ca.IssueNode(certs, pki.NodeCertRequest{Region: "elsewhere-1", NodeID: "foreigner", Hosts: []string{"127.0.0.1"}}); err != nil {
			t.Fatal(err)
		}
		secret := filepath.Join(dir, "join-secret")
		if err := os.WriteFile(secret, []byte("test-join-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := node.Config{
			DataDir: filepath.Join(dir, "data"), JoinSecretFile: secret, Gossip: testGossip(keys, seed),
			TLSCertFile: filepath.Join(certs, pki.NodeCertFile), TLSKeyFile: filepath.Join(certs, pki.NodeKeyFile), TLSCAFile: filepath.Join(certs, pki.CACertFile),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		if n, err := node.Start(ctx, cfg); err == nil {
			_ = n.Close(context.Background())
			t.Fatal("a node of another region joined through this region's seed")
		} else if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, membership.ErrJoin) {
			t.Errorf("start: %v, want the gossip join to fail until the deadline", err)
		}
		st := clusterStatus(t, r, r.Leader())
		if got := suffrages(st); !maps.Equal(got, want) {
			t.Errorf("raft configuration %v after the foreign node tried, want %v", got, want)
		}
		if m := gossipMember(st.GetLanMembers(), "foreigner"); m != nil {
			t.Errorf("the LAN pool lists the foreign node: %v", m)
		}
	})
}

func TestKilledVoterIsRemovedAndQuorumKept(t *testing.T) {
	const cleanupAfter = 2 * time.Second
	keys := gossipKeyFile(t)
	// Three voters and a nonvoter: with one voter dead, two healthy voters are a quorum of the
	// configuration without it, so cleanup may remove it, and the nonvoter takes its seat.
	r := gossipRegion(t, keys, nodetest.RegionName, 3, func(cfg *node.Config) { cfg.Gossip.DeadServerCleanupAfter = cleanupAfter })
	leader := r.Leader()
	victim := -1
	for _, i := range r.Followers() {
		if suffrages(clusterStatus(t, r, leader))[r.Node(i).ID()] == "voter" {
			victim = i
			break
		}
	}
	if victim < 0 {
		t.Fatalf("no follower is a voter: %v", suffrages(clusterStatus(t, r, leader)))
	}
	victimID := r.Node(victim).ID()
	r.Stop(victim) // no leave: peers see a failure

	start := time.Now()
	nodetest.WaitFor(t, gossipWait, "the leader to remove "+victimID+" and promote node3", func() bool {
		st, err := r.Cluster(r.Leader()).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
		if err != nil {
			return false
		}
		got := suffrages(st)
		_, present := got[victimID]
		return !present && len(got) == 3 && got["node3"] == "voter"
	})
	if took := time.Since(start); took < cleanupAfter {
		t.Errorf("%s was removed %v after it stopped, before DeadServerCleanupAfter", victimID, took)
	}
	// The region keeps its quorum: a write through a follower commits, and the promoted node
	// serves. Calls are retried: a loaded machine may hold an election meanwhile, which a
	// region with a quorum comes through.
	var keyID string
	eventually(t, "CreateKey through a follower", func() error {
		resp, err := r.KMS(r.Followers()[0]).CreateKey(ctxT(t), &kmspb.CreateKeyRequest{Description: "after cleanup"})
		keyID = resp.GetKeyMetadata().GetKeyId()
		return err
	})
	var blob []byte
	eventually(t, "Encrypt on node3", func() error {
		resp, err := r.KMS(3).Encrypt(ctxT(t), &kmspb.EncryptRequest{KeyId: keyID, Plaintext: []byte("after cleanup")})
		blob = resp.GetCiphertextBlob()
		return err
	})

	// The removed node comes back with its data dir: the leader admits it again, as a
	// nonvoter now that three voters sit.
	r.Restart(victim)
	nodetest.WaitFor(t, gossipWait, victimID+" to be admitted again", func() bool {
		st, err := r.Cluster(r.Leader()).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
		return err == nil && suffrages(st)[victimID] == "nonvoter"
	})
	eventually(t, "Decrypt on the returned node", func() error {
		resp, err := r.KMS(victim).Decrypt(ctxT(t), &kmspb.DecryptRequest{CiphertextBlob: blob})
		if err == nil && string(resp.GetPlaintext()) != "after cleanup" {
			t.Fatalf("decrypt on the returned node = %q", resp.GetPlaintext())
		}
		return err
	})
}

// eventually retries op until it succeeds or gossipWait passes.
func eventually(t *testing.T, what string, op func() error) {
	t.Helper()
	deadline := time.Now().Add(gossipWait)
	for {
		err := op()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, gossipWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterStatusShowsBothPoolsAndEachRegionsLeader(t *testing.T) {
	keys := gossipKeyFile(t)
	eu := gossipRegion(t, keys, "eu-1", 2)
	// One WAN seed on one node links both regions: region peers find each other's WAN
	// addresses in their LAN pool.
	us := regionWithWANSeed(t, keys, "us-1", eu.Node(0).GossipWANAddr())
	usSeed := us.Node(0).GossipLANAddr()
	us.AddNode(func(cfg *node.Config) {
		cfg.Join = ""
		cfg.Gossip.WANJoin = nil
		cfg.Gossip.RetryJoin = []string{usSeed}
	})

	// Leaders are read at each poll: on a loaded machine a region may hold an election meanwhile.
	leaderOf := func(r *nodetest.Region) string {
		for _, i := range r.Running() {
			if n := r.Node(i); n != nil && n.IsLeader() {
				return n.ID()
			}
		}
		return ""
	}
	var wantLeaders map[string]string
	wantWAN := []string{"eu-1/node0", "eu-1/node1", "eu-1/node2", "us-1/node0", "us-1/node1"}
	var last string
	check := func(r *nodetest.Region, i int, region string, lan []string) func() bool {
		return func() bool {
			wantLeaders = map[string]string{"eu-1": leaderOf(eu), "us-1": leaderOf(us)}
			st, err := r.Cluster(i).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
			if err != nil {
				return false
			}
			var gotLAN, gotWAN []string
			for _, m := range st.GetLanMembers() {
				if m.GetStatus() == "alive" && m.GetRegion() == region {
					gotLAN = append(gotLAN, m.GetId())
				}
			}
			for _, m := range st.GetWanMembers() {
				if m.GetStatus() == "alive" {
					gotWAN = append(gotWAN, m.GetRegion()+"/"+m.GetId())
				}
			}
			leaders := make(map[string]string)
			for _, l := range st.GetRegionLeaders() {
				leaders[l.GetRegion()] = l.GetNodeId()
				if l.GetGrpcAddress() == "" {
					return false
				}
			}
			last = fmt.Sprintf("LAN %v, WAN %v, leaders %v", gotLAN, gotWAN, leaders)
			return slices.Equal(gotLAN, lan) && slices.Equal(gotWAN, wantWAN) && maps.Equal(leaders, wantLeaders)
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s; want LAN of the region, WAN %v, leaders %v", last, wantWAN, wantLeaders)
		}
	}()
	for _, i := range eu.Followers() {
		nodetest.WaitFor(t, gossipWait, fmt.Sprintf("eu-1 follower node%d to see both pools and both leaders", i),
			check(eu, i, "eu-1", []string{"node0", "node1", "node2"}))
	}
	for i := range us.Len() {
		nodetest.WaitFor(t, gossipWait, fmt.Sprintf("us-1 node%d to see both pools and both leaders", i),
			check(us, i, "us-1", []string{"node0", "node1"}))
	}
	leader := eu.Leader()
	st := clusterStatus(t, eu, leader)
	if m := gossipMember(st.GetLanMembers(), eu.Node(leader).ID()); m == nil || m.GetGrpcAddress() != eu.Node(leader).GRPCAddr() || m.GetRole() != "voter" {
		t.Errorf("the leader's own LAN record: %v", m)
	}
}

func TestGossipKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, _ := node.NewGossipKey()
	k2, _ := node.NewGossipKey()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	keys, err := node.ReadGossipKeys(write("two", "# rotating: new key second\n"+k1+"\n\n  "+k2+"  \n"))
	if err != nil || len(keys) != 2 || len(keys[0]) != membership.KeySize {
		t.Fatalf("ReadGossipKeys = %d keys, %v", len(keys), err)
	}
	for name, content := range map[string]string{
		"short":     k1 + "\nAAAAAAAAAAAAAAAAAAAAAA==\n", // 16 bytes: refused, one strength everywhere
		"not-b64":   "not a key\n",
		"only-note": "# no key yet\n",
	} {
		if _, err := node.ReadGossipKeys(write(name, content)); err == nil {
			t.Errorf("%s: ReadGossipKeys accepted it", name)
		}
	}
}

func TestJoiningNodeWithoutTheGossipKeyFailsAtOnce(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	cfg := node.Config{
		DataDir: filepath.Join(t.TempDir(), "data"), NodeID: "keyless",
		Gossip: &node.GossipConfig{LANBind: "127.0.0.1:0", RetryJoin: []string{"127.0.0.1:1"}},
	}
	r.IssueNodeCert(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), gossipWait)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err == nil {
		_ = n.Close(context.Background())
		t.Fatal("a node without the gossip keyring started")
	}
	if ctx.Err() != nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("start: %v; want an immediate error naming the missing keyring", err)
	}
}

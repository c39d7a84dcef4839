package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

func TestGossipIsOffWithoutGossipFlags(t *testing.T) {
	o, err := parseFlags([]string{"-dev", "-data-dir", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.node.Gossip != nil {
		t.Fatalf("gossip on without gossip flags: %+v", o.node.Gossip)
	}
}

func TestRetryJoinTurnsGossipOnWithDefaults(t *testing.T) {
	dir := t.TempDir()
	o, err := parseFlags([]string{"-dev", "-data-dir", dir, "-grpc-addr", "10.0.0.7:7420",
		"-retry-join", "10.0.0.1:7422,10.0.0.2:7422", "-retry-join", "10.0.0.3:7422", "-wan-join", "10.1.0.1:7423"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g := o.node.Gossip
	switch {
	case g == nil:
		t.Fatal("-retry-join did not turn gossip on")
	case !slices.Equal(g.RetryJoin, []string{"10.0.0.1:7422", "10.0.0.2:7422", "10.0.0.3:7422"}):
		t.Errorf("RetryJoin = %v", g.RetryJoin)
	case !slices.Equal(g.WANJoin, []string{"10.1.0.1:7423"}):
		t.Errorf("WANJoin = %v", g.WANJoin)
	case g.LANBind != "10.0.0.7:7422" || g.WANBind != "10.0.0.7:7423":
		t.Errorf("default gossip addresses LAN %s WAN %s, want the gRPC host on 7422 and 7423", g.LANBind, g.WANBind)
	case g.Voters != node.DefaultVoters || g.DeadServerCleanupAfter != node.DefaultDeadServerCleanupAfter:
		t.Errorf("Voters %d, DeadServerCleanupAfter %v", g.Voters, g.DeadServerCleanupAfter)
	case g.KeyFile != filepath.Join(dir, "gossip-key"):
		t.Errorf("KeyFile = %s", g.KeyFile)
	case o.node.Bootstrap:
		t.Error("-dev with -retry-join bootstraps a region of its own instead of joining")
	}
}

func TestGossipFlags(t *testing.T) {
	o, err := parseFlags([]string{"-dev", "-data-dir", t.TempDir(), "-gossip-lan", "127.0.0.1:0", "-voters", "3",
		"-dead-server-cleanup-after", "2m", "-gossip-key-file", "/etc/trent/gossip-key"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	g := o.node.Gossip
	if g == nil || g.LANBind != "127.0.0.1:0" || g.WANBind != "127.0.0.1:0" || g.Voters != 3 ||
		g.DeadServerCleanupAfter != 2*time.Minute || g.KeyFile != "/etc/trent/gossip-key" || !o.node.Bootstrap {
		t.Fatalf("gossip config %+v, bootstrap %v", g, o.node.Bootstrap)
	}
}

func TestGossipSettingsWithoutGossipAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-voters", "3"}, "-voters needs gossip"},
		{[]string{"-gossip-key-file", "k"}, "-gossip-key-file needs gossip"},
		{[]string{"-dead-server-cleanup-after", "1m"}, "-dead-server-cleanup-after needs gossip"},
		{[]string{"-gossip-lan", "127.0.0.1:0", "-voters", "-1"}, "voters -1"},
		{[]string{"-gossip-lan", "not-an-address"}, "gossip: LAN address"},
		{[]string{"-gossip-lan", "localhost:7422"}, `"localhost" is not an IP address`},
		{[]string{"-gossip-lan", "127.0.0.1:0", "-gossip-wan", "wan.example:7423"}, "gossip: WAN address"},
	} {
		var stderr strings.Builder
		if _, err := parseFlags(append([]string{"-dev", "-data-dir", t.TempDir()}, tc.args...), &stderr); err == nil || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: err %v, stderr %q; want it to mention %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}

// TestDevModeWithGossip starts kmsd -dev with a LAN gossip address: it creates its gossip key
// in the data dir, readable by its owner only, names its gossip addresses in the ready line,
// and cluster status lists it in both pools as its region's leader.
func TestDevModeWithGossip(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "trent-data")
	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- serve(ctx, []string{"-dev", "-data-dir", dataDir, "-grpc-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0",
			"-gossip-lan", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		stop()
		if code := <-exited; code != 0 {
			t.Errorf("kmsd exited %d: %s", code, stderr.String())
		}
	})
	var ready []string
	nodetest.WaitFor(t, 30*time.Second, "kmsd's ready line", func() bool {
		select {
		case code := <-exited:
			exited <- code
			t.Fatalf("kmsd exited %d before it was ready: %s", code, stderr.String())
		default:
		}
		ready = regexp.MustCompile(`ready grpc=(\S+) raft=\S+ node=(\S+) region=\S+ gossip_lan=(127\.0\.0\.1:\d+) gossip_wan=(127\.0\.0\.1:\d+)\n`).FindStringSubmatch(stdout.String())
		return ready != nil
	})
	addr, nodeID := ready[1], ready[2]
	info, err := os.Stat(filepath.Join(dataDir, "gossip-key"))
	if err != nil {
		t.Fatalf("dev mode did not create its gossip key: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("gossip key mode %v, want 0600", info.Mode().Perm())
	}
	if _, err := node.ReadGossipKeys(filepath.Join(dataDir, "gossip-key")); err != nil {
		t.Error(err)
	}

	conn, err := nodetest.DialTLS(addr, filepath.Join(dataDir, pki.DevTLSDir, pki.DevAdminDir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	nodetest.WaitFor(t, 20*time.Second, "cluster status to show the node leading in both pools", func() bool {
		reqCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := kmspb.NewClusterClient(conn).Status(reqCtx, &kmspb.ClusterStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		leaders := st.GetRegionLeaders()
		return len(st.GetLanMembers()) == 1 && st.GetLanMembers()[0].GetLeader() && st.GetLanMembers()[0].GetGossipAddress() == ready[3] &&
			len(st.GetWanMembers()) == 1 && st.GetWanMembers()[0].GetGossipAddress() == ready[4] &&
			len(leaders) == 1 && leaders[0].GetRegion() == "local" && leaders[0].GetNodeId() == nodeID && leaders[0].GetGrpcAddress() == addr
	})
}

package node_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// A region whose nodes all restart at once, none of them with a WAN seed (as the first region's
// nodes have none), finds the other regions again through the WAN addresses it remembered.
func TestRegionRestartedWholeRejoinsTheWANPool(t *testing.T) {
	keys := gossipKeyFile(t)
	eu := gossipRegion(t, keys, "eu-1", 1)
	us := regionWithWANSeed(t, keys, "us-1", eu.Node(0).GossipWANAddr())
	seesUS := func(i int) func() bool {
		return func() bool {
			st, err := eu.Cluster(i).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
			if err != nil {
				return false
			}
			for _, m := range st.GetWanMembers() {
				if m.GetRegion() == "us-1" && m.GetStatus() == "alive" {
					return true
				}
			}
			return false
		}
	}
	for i := range eu.Len() {
		nodetest.WaitFor(t, gossipWait, "eu-1 to see us-1 in the WAN pool", seesUS(i))
	}
	want := us.Node(0).GossipWANAddr()
	for i := range eu.Len() {
		nodetest.WaitFor(t, gossipWait, "every eu-1 node to remember us-1's WAN address", func() bool {
			data, err := os.ReadFile(filepath.Join(eu.DataDir(i), "gossip-wan-peers"))
			return err == nil && strings.Contains(string(data), want)
		})
	}

	// Keep the old WAN addresses taken, so eu-1's nodes come back on other ones: us-1, which
	// knows only the old ones, cannot be what links the two again.
	oldWAN := make([]string, eu.Len())
	for i := range eu.Len() {
		oldWAN[i] = eu.Node(i).GossipWANAddr()
	}
	for i := range eu.Len() {
		eu.Stop(i)
	}
	for _, addr := range oldWAN {
		squatter, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("take eu-1's old WAN address %s: %v", addr, err)
		}
		defer squatter.Close()
	}
	eu.RestartAll()
	for i := range eu.Len() {
		if got := eu.Node(i).GossipWANAddr(); got == oldWAN[i] {
			t.Fatalf("restarted eu-1 node%d is on its old WAN address %s", i, got)
		}
	}
	for i := range eu.Len() {
		nodetest.WaitFor(t, gossipWait, "restarted eu-1 to see us-1 in the WAN pool again", seesUS(i))
	}
}

package node

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trent-kms/trent/regions/membership"
)

func TestWANPeersRememberOtherRegionsAndRejoinOnlyWhenAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), wanPeersFile)
	p, err := loadWANPeers(path, "eu-1")
	if err != nil {
		t.Fatal(err)
	}
	alone := []membership.Member{{ID: "n1", Region: "eu-1", WANAddr: "10.0.0.1:7423", Status: membership.StatusAlive}}
	if rejoin, err := p.update(alone); err != nil || rejoin != nil {
		t.Fatalf("nothing remembered yet: rejoin %v, err %v; want neither", rejoin, err)
	}
	linked := append(slices.Clone(alone),
		membership.Member{ID: "u2", Region: "us-1", WANAddr: "10.1.0.2:7423", Status: membership.StatusAlive},
		membership.Member{ID: "u1", Region: "us-1", WANAddr: "10.1.0.1:7423", Status: membership.StatusAlive},
		membership.Member{ID: "u3", Region: "us-1", WANAddr: "10.1.0.3:7423", Status: membership.StatusDead},
		membership.Member{ID: "a1", Region: "ap-1", WANAddr: "", Status: membership.StatusAlive},
	)
	if rejoin, err := p.update(linked); err != nil || rejoin != nil {
		t.Fatalf("linked to us-1: rejoin %v, err %v; want neither", rejoin, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "10.1.0.1:7423\n10.1.0.2:7423\n"; string(data) != want {
		t.Fatalf("remembered %q, want the alive members of other regions that announce a WAN address: %q", data, want)
	}

	// After a restart, alone in the WAN pool: join the remembered addresses; the file stays.
	p, err = loadWANPeers(path, "eu-1")
	if err != nil {
		t.Fatal(err)
	}
	rejoin, err := p.update(alone)
	if err != nil || !slices.Equal(rejoin, []string{"10.1.0.1:7423", "10.1.0.2:7423"}) {
		t.Fatalf("restarted alone: rejoin %v, err %v; want the two remembered addresses", rejoin, err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(data) {
		t.Fatalf("an empty view overwrote the remembered addresses: %q", after)
	}
}

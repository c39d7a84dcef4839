package membership

import (
	"errors"
	"io"
	"log"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// rogue is a bare memberlist with the right key and label but none of this package's checks,
// gossiping whatever metadata the test gives it: the misconfigured or hostile node the LAN
// pool's delegates must keep out.
type rogue struct {
	mu   sync.Mutex
	meta nodeMeta
	list *memberlist.Memberlist
}

func (r *rogue) NodeMeta(int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.meta.encode()
}
func (r *rogue) NotifyMsg([]byte)                {}
func (r *rogue) GetBroadcasts(int, int) [][]byte { return nil }
func (r *rogue) LocalState(bool) []byte          { return nil }
func (r *rogue) MergeRemoteState([]byte, bool)   {}

func (r *rogue) forge(m nodeMeta) error {
	r.mu.Lock()
	r.meta = m
	r.mu.Unlock()
	return r.list.UpdateNode(5 * time.Second)
}

func startRogue(t *testing.T, meta nodeMeta) *rogue {
	t.Helper()
	r := &rogue{meta: meta}
	c := ProfileFast.timing(LAN)
	c.Name = meta.ID
	c.BindAddr, c.BindPort = "127.0.0.1", 0
	c.Label = "trent-lan"
	c.Keyring, _ = memberlist.NewKeyring(nil, testKey("primary"))
	c.Delegate = r
	c.Logger = log.New(io.Discard, "", 0)
	list, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	r.list = list
	t.Cleanup(func() { _ = list.Shutdown() })
	return r
}

// The seed alone must refuse: a joiner that runs no checks of its own hears the seed's state
// (memberlist sends it before merging), but never becomes a member, neither through the join
// nor through its later gossip and push/pull.
func TestLANSeedRefusesForeignJoiner(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	r := startRogue(t, nodeMeta{ID: "r", Region: "us-1"})
	_, _ = r.list.Join([]string{a.LANAddr()})
	waitFor(t, waitTimeout, "a to refuse the join and the gossip after it", func() bool {
		return a.lan.refused.Load() >= 2
	})
	if !allAlive(a.LANMembers(), "a") {
		t.Errorf("a lists %v, want itself only", a.LANMembers())
	}
}

// A member that later gossips another region (or a forged identity) is not believed: its
// earlier, valid record stands.
func TestLANIgnoresForgedRegionInGossip(t *testing.T) {
	a, b := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	r := startRogue(t, nodeMeta{ID: "r", Region: "eu-1", RaftAddr: "127.0.0.1:9"})
	if _, err := r.list.Join([]string{a.LANAddr()}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{a, b} {
		waitFor(t, waitTimeout, n.NodeID()+" to see r", func() bool { return allAlive(n.LANMembers(), "a", "b", "r") })
	}

	refusedA, refusedB := a.lan.refused.Load(), b.lan.refused.Load()
	if err := r.forge(nodeMeta{ID: "r", Region: "us-1", RaftAddr: "127.0.0.1:9", Leader: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "both nodes to refuse the forged metadata", func() bool {
		return a.lan.refused.Load() > refusedA && b.lan.refused.Load() > refusedB
	})
	for _, n := range []*testNode{a, b} {
		m, _ := memberByID(n.LANMembers(), "r")
		if m.Region != "eu-1" || m.Leader {
			t.Errorf("%s believed the forged metadata: %+v", n.NodeID(), m)
		}
	}
}

func TestCheckRefusesMismatchedNames(t *testing.T) {
	a := startNode(t, "a", "eu-1")
	meta := nodeMeta{ID: "b", Region: "eu-1"}.encode()
	if _, err := a.lan.check(&memberlist.Node{Name: "b", Meta: meta}); err != nil {
		t.Fatalf("valid peer refused: %v", err)
	}
	if _, err := a.lan.check(&memberlist.Node{Name: "c", Meta: meta}); !errors.Is(err, errBadMeta) {
		t.Errorf("name c announcing id b: err = %v, want errBadMeta", err)
	}
	if _, err := a.wan.check(&memberlist.Node{Name: "b", Meta: meta}); !errors.Is(err, errBadMeta) {
		t.Errorf("WAN name without region: err = %v, want errBadMeta", err)
	}
	if _, err := a.wan.check(&memberlist.Node{Name: "eu-1/b", Meta: meta}); err != nil {
		t.Errorf("valid WAN peer refused: %v", err)
	}
	foreign := nodeMeta{ID: "x", Region: "us-1"}.encode()
	if _, err := a.lan.check(&memberlist.Node{Name: "x", Meta: foreign}); !errors.Is(err, errForeignRegion) {
		t.Errorf("foreign LAN peer: err = %v, want errForeignRegion", err)
	}
	if _, err := a.wan.check(&memberlist.Node{Name: "us-1/x", Meta: foreign}); err != nil {
		t.Errorf("foreign WAN peer refused: %v", err)
	}
	if _, err := a.lan.check(&memberlist.Node{Name: "b", Meta: []byte{9}}); !errors.Is(err, errBadMeta) {
		t.Errorf("garbage metadata: err = %v, want errBadMeta", err)
	}
}

// A member that stops acknowledging this node's probes is reported suspect until it answers.
func TestSuspectFromMissingAcks(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := startNode(t, "a", "eu-1", func(c *Config) { c.now = clock.Now })
	peer := &memberlist.Node{Name: "b", Meta: nodeMeta{ID: "b", Region: "eu-1"}.encode()}
	a.lan.NotifyJoin(peer)
	if m, _ := memberByID(a.LANMembers(), "b"); m.Status != StatusAlive {
		t.Fatalf("fresh member: %v", m.Status)
	}
	joined := clock.Now()
	clock.Advance(time.Minute)
	m, _ := memberByID(a.LANMembers(), "b")
	if m.Status != StatusSuspect || !m.LastChange.After(joined) || !m.LastChange.Before(clock.Now()) {
		t.Fatalf("silent member: %v since %v", m.Status, m.LastChange)
	}
	a.lan.NotifyPingComplete(peer, time.Millisecond, nil)
	if m, _ := memberByID(a.LANMembers(), "b"); m.Status != StatusAlive {
		t.Fatalf("after an ack: %v", m.Status)
	}
	if me, _ := memberByID(a.LANMembers(), "a"); me.Status != StatusAlive {
		t.Fatalf("a node never suspects itself: %v", me.Status)
	}
}

package pki

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// listFSM records applied entries.
type listFSM struct {
	mu      sync.Mutex
	entries []string
}

func (f *listFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, string(l.Data))
	return len(f.entries)
}

func (f *listFSM) has(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.entries {
		if e == s {
			return true
		}
	}
	return false
}

func (f *listFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (f *listFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

func TestRaftClusterOverStreamLayer(t *testing.T) {
	_, ca := newTestCA(t, "cluster CA")
	const n = 3
	var (
		layers  [n]*testLayer
		nodes   [n]*raft.Raft
		fsms    [n]*listFSM
		servers []raft.Server
	)
	for i := range n {
		layers[i] = newLayer(t, ca, "eu-1", fmt.Sprintf("n%d", i+1))
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: layers[i].addr})
	}
	for i := range n {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.HeartbeatTimeout = 300 * time.Millisecond
		conf.ElectionTimeout = 300 * time.Millisecond
		conf.LeaderLeaseTimeout = 150 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.LogOutput = io.Discard
		trans := raft.NewNetworkTransport(layers[i], 3, 2*time.Second, io.Discard)
		store := raft.NewInmemStore()
		fsms[i] = &listFSM{}
		r, err := raft.NewRaft(conf, fsms[i], store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = r
		t.Cleanup(func() {
			if err := r.Shutdown().Error(); err != nil {
				t.Error(err)
			}
			trans.Close()
		})
	}
	if err := nodes[0].BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}

	// A loaded machine can make a young leader step down, so retry the
	// write on whichever node leads; the FSM check below tolerates a
	// duplicate.
	const entry = "hello over mTLS"
	eventuallyWithin(t, 12*time.Second, "an entry committed through a leader", func() bool {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				return r.Apply([]byte(entry), 2*time.Second).Error() == nil
			}
		}
		return false
	})
	eventuallyWithin(t, 12*time.Second, "every node to apply the entry", func() bool {
		for _, f := range fsms {
			if !f.has(entry) {
				return false
			}
		}
		return true
	})
	// No node refused another's certificate. (Timeouts under load may be
	// logged as refusals too, so look for verification failures only.)
	for i, l := range layers {
		for _, bad := range []string{"peer refused", "x509:", "bad certificate", "no trent identity"} {
			if strings.Contains(l.logs.String(), bad) {
				t.Errorf("node %d logged %q:\n%s", i+1, bad, l.logs.String())
			}
		}
	}
}

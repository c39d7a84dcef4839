package membership

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
)

// waitTimeout is generous: the suite must pass under -race on a loaded 2-core machine, where a
// failure that takes a second to detect can take several.
const waitTimeout = 20 * time.Second

// waitFor polls cond until it holds or timeout passes. Gossip converges by itself, so polling
// a condition is the only sound way to wait for it.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testKey derives a distinct gossip key per label, so tests need no randomness.
func testKey(label string) []byte {
	k := sha256.Sum256([]byte("membership test key " + label))
	return k[:]
}

// eventLog collects a node's events for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) has(match func(Event) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.events, match)
}

type testNode struct {
	*Membership
	events *eventLog
}

// startNode starts a node on loopback with ports picked by the kernel and fast timing. The
// gRPC and Raft addresses are only announced, never dialled, so made-up ones do.
func startNode(t *testing.T, id, region string, tweak ...func(*Config)) *testNode {
	t.Helper()
	events := &eventLog{}
	logs := &testlog.Buffer{}
	cfg := Config{
		NodeID:   id,
		Region:   region,
		GRPCAddr: "127.0.0.1:1" + id,
		RaftAddr: "127.0.0.1:2" + id,
		LANBind:  "127.0.0.1:0",
		WANBind:  "127.0.0.1:0",
		Keys:     [][]byte{testKey("primary")},
		Profile:  ProfileFast,
		OnEvent:  events.add,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	m, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() {
		_ = m.Shutdown()
		if t.Failed() {
			t.Logf("log of %s:\n%s", id, logs.String())
		}
	})
	return &testNode{Membership: m, events: events}
}

func memberByID(members []Member, id string) (Member, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// allAlive reports whether members lists exactly ids, all alive.
func allAlive(members []Member, ids ...string) bool {
	if len(members) != len(ids) {
		return false
	}
	for _, id := range ids {
		if m, ok := memberByID(members, id); !ok || m.Status != StatusAlive {
			return false
		}
	}
	return true
}

// mustJoin joins through seeds, retrying as deployments do: on a loaded machine a join's TCP
// exchange can time out.
func mustJoin(t *testing.T, join JoinFunc, seeds ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := RetryJoin(ctx, join, seeds, 100*time.Millisecond); err != nil {
		t.Fatalf("join %v: %v", seeds, err)
	}
}

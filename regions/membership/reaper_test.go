package membership

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/cluster"
)

// The Reaper is meant to be wired to the Raft node as is.
var _ Remover = (*cluster.Node)(nil)

// fakeRaft is a Raft configuration that only records removals.
type fakeRaft struct {
	mu      sync.Mutex
	voters  []string
	removed map[string]time.Time
	fail    error
}

func newFakeRaft(voters ...string) *fakeRaft {
	return &fakeRaft{voters: voters, removed: map[string]time.Time{}}
}

func (f *fakeRaft) Servers(context.Context) ([]RaftServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []RaftServer
	for _, id := range f.voters {
		out = append(out, RaftServer{ID: id, Voter: true})
	}
	return out, nil
}

func (f *fakeRaft) RemoveServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	i := slices.Index(f.voters, id)
	if i < 0 {
		return errors.New("unknown server " + id)
	}
	f.voters = slices.Delete(f.voters, i, i+1)
	f.removed[id] = time.Now()
	return nil
}

func (f *fakeRaft) current() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.voters)
}

// fakeClock and fakeMembers let the Reaper's loop be driven step by step.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fakeMembers struct {
	mu      sync.Mutex
	members []Member
}

func (f *fakeMembers) list() []Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.members)
}

func (f *fakeMembers) set(m ...Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = m
}

func TestReaperActsOnlyAsLeaderAfterThreshold(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	raft := newFakeRaft("a", "b", "c", "d", "e")
	members := &fakeMembers{}
	members.set(
		Member{ID: "a", Status: StatusAlive},
		Member{ID: "b", Status: StatusAlive},
		Member{ID: "c", Status: StatusAlive},
		Member{ID: "d", Status: StatusAlive},
		Member{ID: "e", Status: StatusDead, LastChange: t0},
	)
	ticks := make(chan time.Time)
	r, err := NewReaper(ReaperConfig{
		Self:    "a",
		Policy:  CleanupPolicy{After: time.Minute},
		Servers: raft.Servers,
		Members: members.list,
		Remover: raft,
		now:     clock.Now,
		ticks:   ticks,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The loop handles one tick at a time, so once a second send returns the first has been
	// handled completely.
	step := func() { ticks <- time.Time{}; ticks <- time.Time{} }

	clock.Advance(time.Hour)
	step()
	if got := raft.current(); len(got) != 5 {
		t.Fatalf("a follower's reaper removed servers: %v", got)
	}

	clock.Advance(-time.Hour + 59*time.Second)
	r.SetLeader(true)
	step()
	if got := raft.current(); len(got) != 5 {
		t.Fatalf("removed before the threshold: %v", got)
	}

	clock.Advance(time.Second)
	step()
	if got := raft.current(); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("after the threshold: configuration %v, want e removed", got)
	}

	r.SetLeader(false)
	members.set(
		Member{ID: "a", Status: StatusAlive},
		Member{ID: "b", Status: StatusAlive},
		Member{ID: "c", Status: StatusAlive},
		Member{ID: "d", Status: StatusLeft, LastChange: t0},
	)
	step()
	if got := raft.current(); len(got) != 4 {
		t.Fatalf("removed after losing leadership: %v", got)
	}
	// Regaining leadership acts at once, without waiting for a tick.
	r.SetLeader(true)
	waitFor(t, waitTimeout, "d to be removed once leader again", func() bool {
		return slices.Equal(raft.current(), []string{"a", "b", "c"})
	})
}

func TestReaperReportsRemoverErrors(t *testing.T) {
	raft := newFakeRaft("a", "b", "c")
	raft.fail = errors.New("not the leader")
	r, err := NewReaper(ReaperConfig{
		Self:    "a",
		Policy:  CleanupPolicy{After: time.Second},
		Servers: raft.Servers,
		Members: func() []Member {
			return []Member{{ID: "c", Status: StatusDead, LastChange: time.Now().Add(-time.Hour)}}
		},
		Remover: raft,
	})
	if err != nil {
		t.Fatal(err)
	}
	removed, err := r.Reap(t.Context())
	if !errors.Is(err, raft.fail) || len(removed) != 0 {
		t.Fatalf("Reap = %v, %v; want the remover's error", removed, err)
	}
}

func TestNewReaperRejects(t *testing.T) {
	raft := newFakeRaft()
	good := ReaperConfig{Self: "a", Policy: CleanupPolicy{After: time.Minute},
		Servers: raft.Servers, Members: func() []Member { return nil }, Remover: raft}
	cases := map[string]func(*ReaperConfig){
		"no self":                   func(c *ReaperConfig) { c.Self = "" },
		"no remover":                func(c *ReaperConfig) { c.Remover = nil },
		"no threshold":              func(c *ReaperConfig) { c.Policy.After = 0 },
		"threshold past tombstones": func(c *ReaperConfig) { c.Policy.After = TombstoneRetention },
		"negative interval":         func(c *ReaperConfig) { c.Interval = -1 },
	}
	for name, tweak := range cases {
		cfg := good
		tweak(&cfg)
		if _, err := NewReaper(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// Three real nodes; one crashes; the reaper on another takes it out of the configuration once it
// has been dead for the threshold, and leaves the live ones alone.
func TestReaperRemovesCrashedNode(t *testing.T) {
	a, b, c := startNode(t, "a", "eu-1"), startNode(t, "b", "eu-1"), startNode(t, "c", "eu-1")
	mustJoin(t, b.JoinLAN, a.LANAddr())
	mustJoin(t, c.JoinLAN, b.LANAddr())
	waitFor(t, waitTimeout, "a to see the region", func() bool { return allAlive(a.LANMembers(), "a", "b", "c") })

	raft := newFakeRaft("a", "b", "c")
	const after = 2 * time.Second
	r, err := NewReaper(ReaperConfig{
		Self:     "a",
		Policy:   CleanupPolicy{After: after},
		Interval: 50 * time.Millisecond,
		Servers:  raft.Servers,
		Members:  a.LANMembers,
		Remover:  raft,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.SetLeader(true)

	if err := c.Shutdown(); err != nil { // no leave: a crash
		t.Fatal(err)
	}
	waitFor(t, waitTimeout, "a to declare c dead", func() bool {
		m, _ := memberByID(a.LANMembers(), "c")
		return m.Status == StatusDead
	})
	waitFor(t, waitTimeout+after, "the reaper to remove c", func() bool {
		return slices.Equal(raft.current(), []string{"a", "b"})
	})
	dead, _ := memberByID(a.LANMembers(), "c")
	raft.mu.Lock()
	removedAt := raft.removed["c"]
	raft.mu.Unlock()
	if gone := removedAt.Sub(dead.LastChange); gone < after {
		t.Errorf("c removed %v after it was declared dead, threshold %v", gone, after)
	}
}

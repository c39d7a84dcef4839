package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Remover takes a server out of the region's Raft configuration. *cluster.Node satisfies it.
type Remover interface {
	RemoveServer(ctx context.Context, id string) error
}

// ReaperConfig wires a Reaper. Servers, Members and Remover are required.
type ReaperConfig struct {
	// Self is this node's id; the policy never removes it.
	Self   string
	Policy CleanupPolicy
	// Interval is how often the leader applies the policy; zero is a quarter of Policy.After,
	// so a failed server goes at most a quarter late.
	Interval time.Duration
	// Servers returns the current Raft configuration.
	Servers func(ctx context.Context) ([]RaftServer, error)
	// Members returns the region's members: (*Membership).LANMembers.
	Members func() []Member
	Remover Remover
	Logger  *slog.Logger

	now   func() time.Time // tests replace the clock
	ticks <-chan time.Time // and drive the loop by hand
}

// Reaper removes failed servers from the Raft configuration while this node leads the region.
// Only the leader can change the configuration, and only one node should decide, so it acts
// only between SetLeader(true) and SetLeader(false).
type Reaper struct {
	cfg    ReaperConfig
	leader atomic.Bool
	wake   chan struct{}
}

// NewReaper checks cfg and returns a Reaper that is not yet leader. Run drives it.
func NewReaper(cfg ReaperConfig) (*Reaper, error) {
	switch {
	case cfg.Self == "":
		return nil, fmt.Errorf("%w: reaper: Self is empty", ErrInvalidConfig)
	case cfg.Servers == nil || cfg.Members == nil || cfg.Remover == nil:
		return nil, fmt.Errorf("%w: reaper: Servers, Members and Remover are required", ErrInvalidConfig)
	case cfg.Policy.After <= 0 || cfg.Policy.After >= TombstoneRetention:
		return nil, fmt.Errorf("%w: reaper: Policy.After %v must be positive and under %v",
			ErrInvalidConfig, cfg.Policy.After, TombstoneRetention)
	case cfg.Interval < 0:
		return nil, fmt.Errorf("%w: reaper: negative Interval", ErrInvalidConfig)
	}
	if cfg.Interval == 0 {
		cfg.Interval = cfg.Policy.After / 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return &Reaper{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// SetLeader tells the Reaper whether this node leads the region. Becoming leader triggers a pass
// at once: failures may have aged past the threshold while another node led.
func (r *Reaper) SetLeader(leader bool) {
	if r.leader.Swap(leader) != leader && leader {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// Run applies the policy every Interval while leader, until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	ticks := r.cfg.ticks
	if ticks == nil {
		t := time.NewTicker(r.cfg.Interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-r.wake:
		}
		if !r.leader.Load() {
			continue
		}
		removed, err := r.Reap(ctx)
		if err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("dead server cleanup failed", "removed", removed, "err", err)
		}
	}
}

// Reap applies the policy once, whether or not this node is leader (a follower's Remover fails),
// and returns the ids it removed.
func (r *Reaper) Reap(ctx context.Context) ([]string, error) {
	servers, err := r.cfg.Servers(ctx)
	if err != nil {
		return nil, fmt.Errorf("membership: reaper: raft configuration: %w", err)
	}
	failed := make(map[string]time.Time)
	for _, m := range r.cfg.Members() {
		if m.Status.failed() {
			failed[m.ID] = m.LastChange
		}
	}
	var removed []string
	var errs []error
	for _, id := range r.cfg.Policy.ServersToRemove(r.cfg.Self, servers, failed, r.cfg.now()) {
		if err := r.cfg.Remover.RemoveServer(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("membership: reaper: remove %s: %w", id, err))
			continue
		}
		r.cfg.Logger.Info("removed failed server from the raft configuration",
			"server", id, "failed_since", failed[id])
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}

package membership

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// JoinFunc is (*Membership).JoinLAN or (*Membership).JoinWAN.
type JoinFunc func(seeds []string) (int, error)

// RetryJoin calls join with seeds every interval until one call reaches a seed, and returns what
// that call returned. Nodes of a region start in any order, so the first seeds tried are often
// not up yet. It gives up when ctx ends, with ctx's error wrapped together with the last join
// error.
//
//	n, err := membership.RetryJoin(ctx, m.JoinWAN, seeds, time.Second)
func RetryJoin(ctx context.Context, join JoinFunc, seeds []string, interval time.Duration) (int, error) {
	if interval <= 0 {
		return 0, fmt.Errorf("%w: retry interval %v", ErrInvalidConfig, interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := join(seeds)
		if err == nil || errors.Is(err, ErrShutdown) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-t.C:
		}
	}
}

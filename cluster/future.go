package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// await waits for a raft future or for ctx, whichever comes first. Raft futures know nothing of
// contexts; when ctx wins, the goroutine lingers until raft resolves the future, which its own
// timeouts and shutdown guarantee. An abandoned Apply may still commit: ctx errors after
// enqueueing mean the outcome is unknown.
func await(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return f.Error()
	}
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueueTimeout turns ctx's deadline into raft's enqueue timeout; zero means none.
func enqueueTimeout(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Until(deadline), time.Nanosecond)
}

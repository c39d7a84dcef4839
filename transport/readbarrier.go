package transport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trent-kms/trent/cluster"
)

// readBarrier waits until this node may serve a linearizable read. While an
// election is in progress no leader can answer, so it retries for up to
// ReadRetry; past that the node is cut off (or the region has no quorum) and
// refuses the request rather than serve stale state.
func (s *Server) readBarrier(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.ReadRetry)
	backoff := proposeRetryMin
	for {
		err := s.raft.ReadBarrier(ctx)
		if err == nil || !errors.Is(err, cluster.ErrNoLeader) || time.Now().Add(backoff).After(deadline) {
			if err != nil && errors.Is(err, cluster.ErrNoLeader) {
				return fmt.Errorf("%w: this node is not in contact with its region's leader: %v", ErrNotServing, err)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, proposeRetryMax)
	}
}

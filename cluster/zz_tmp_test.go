package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

func BenchmarkTmpRawVsNode(b *testing.B) {
	c := newTestCluster(b, productionTimings)
	leader := c.waitLeader(c.bootstrap(1, true)...)
	var seq atomic.Int64
	b.Run("node", func(b *testing.B) {
		runConcurrently(b, func(ctx context.Context) error {
			key := fmt.Sprintf("k%09d", seq.Add(1))
			_, err := leader.Apply(ctx, kvCommand(key, strings.Repeat("v", 256-len(key)-1)))
			return err
		})
	})
	b.Run("raw", func(b *testing.B) {
		runConcurrently(b, func(ctx context.Context) error {
			key := fmt.Sprintf("k%09d", seq.Add(1))
			return leader.raft.Apply(kvCommand(key, strings.Repeat("v", 256-len(key)-1)), 0).Error()
		})
	})
}

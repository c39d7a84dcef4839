package cluster

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const benchConcurrency = 64

// productionTimings undoes the shortened test timings, so benchmarks run with the defaults.
func productionTimings(cfg *Config) {
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 0, 0, 0
	cfg.CommitTimeout, cfg.ReadIndexTimeout = 0, 0
}

// runConcurrently runs op b.N times from benchConcurrency goroutines and reports ops/s.
func runConcurrently(b *testing.B, op func(ctx context.Context) error) {
	b.Helper()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchConcurrency + procs - 1) / procs)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkApply measures committed 256-byte commands per second over TCP with boltdb on disk.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			c := newTestCluster(b, productionTimings)
			leader := c.waitLeader(c.bootstrap(size, true)...)
			var seq atomic.Int64
			b.Run(fmt.Sprintf("c=%d", benchConcurrency), func(b *testing.B) {
				runConcurrently(b, func(ctx context.Context) error {
					key := fmt.Sprintf("k%09d", seq.Add(1))
					_, err := leader.Apply(ctx, kvCommand(key, strings.Repeat("v", 256-len(key)-1)))
					return err
				})
			})
		})
	}
}

// BenchmarkReadBarrier measures linearizable read barriers per second on a 3-node group. The
// follower's fetcher calls the leader in-process, so the figure excludes the RPC transport adds.
func BenchmarkReadBarrier(b *testing.B) {
	c := newTestCluster(b, productionTimings)
	nodes := c.bootstrap(3, true)
	leader := c.waitLeader(nodes...)
	mustApply(b, leader, "a", "1")
	for _, target := range []struct {
		name string
		node *testNode
	}{{"follower", others(nodes, leader)[0]}, {"leader", leader}} {
		b.Run(fmt.Sprintf("%s/c=%d", target.name, benchConcurrency), func(b *testing.B) {
			runConcurrently(b, target.node.ReadBarrier)
		})
	}
}

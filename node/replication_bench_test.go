package node_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// Replication figures (scripts/bench.sh): two regions of 3 nodes on this
// machine, 50 ms added each way between them, key changes (rotations of
// benchKeys multi-region keys, round robin) at benchRate per second at the
// primary.
const (
	benchKeys    = 20
	benchRate    = 100
	benchLatency = 50 * time.Millisecond
)

type changeWatch struct {
	key      string
	versions int       // versions the replica holds once it has the change
	made     time.Time // when the primary acknowledged it
}

// replicaHas reports whether us-1's leader holds w's change.
func replicaHas(us *nodetest.Region, leader int, w changeWatch) bool {
	k, ok := us.Node(leader).State().Key(w.key)
	return ok && len(k.GetVersions()) >= w.versions
}

func benchRegions(b *testing.B) (eu, us *nodetest.Region, l *link, keys []string) {
	l = &link{}
	l.delay.Store(int64(benchLatency))
	eu, us = twoRegions(b, l)
	for range benchKeys {
		id := createMRK(b, eu, 0)
		replicate(b, eu, 0, id, "us-1")
		keys = append(keys, id)
	}
	for _, id := range keys {
		nodetest.WaitFor(b, replWait, "replica "+id, func() bool { return caughtUp(b, eu, 0, id, "us-1") })
	}
	return eu, us, l, keys
}

// rotateAtRate rotates keys round robin at benchRate per second, n times,
// calling made with each acknowledged change.
func rotateAtRate(b *testing.B, eu *nodetest.Region, keys []string, n int, made func(changeWatch)) {
	versions := make(map[string]int, len(keys))
	for _, id := range keys {
		versions[id] = 1
	}
	kms := eu.KMS(eu.Leader())
	tick := time.NewTicker(time.Second / benchRate)
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range n {
		<-tick.C
		id := keys[i%len(keys)]
		versions[id]++
		w := changeWatch{key: id, versions: versions[id]}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := kms.RotateKeyOnDemand(ctx, &kmspb.RotateKeyOnDemandRequest{KeyId: w.key}); err != nil {
				b.Errorf("rotate %s: %v", w.key, err)
				return
			}
			w.made = time.Now()
			made(w)
		}()
	}
	wg.Wait()
}

// BenchmarkReplicationLag reports the time from a change's acknowledgement
// at the primary to its application in the replica region (p50, p99, max)
// over b.N changes.
func BenchmarkReplicationLag(b *testing.B) {
	eu, us, _, keys := benchRegions(b)
	leader := us.Leader()
	var mu sync.Mutex
	var pending []changeWatch
	var lags []time.Duration
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			now := time.Now()
			mu.Lock()
			pending = slices.DeleteFunc(pending, func(w changeWatch) bool {
				if replicaHas(us, leader, w) {
					lags = append(lags, now.Sub(w.made))
					return true
				}
				return false
			})
			mu.Unlock()
		}
	}()
	b.ResetTimer()
	rotateAtRate(b, eu, keys, b.N, func(w changeWatch) {
		mu.Lock()
		pending = append(pending, w)
		mu.Unlock()
	})
	nodetest.WaitFor(b, replWait, "every change to reach us-1", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(pending) == 0
	})
	b.StopTimer()
	close(stop)
	<-polled
	slices.Sort(lags)
	pct := func(p float64) float64 {
		return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-lag-ms")
	b.ReportMetric(pct(0.99), "p99-lag-ms")
	b.ReportMetric(pct(1), "max-lag-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkReplicationCatchUp cuts the link for a partition (30 s, or
// TRENT_BENCH_PARTITION) while the primary keeps changing keys at benchRate,
// heals it, and reports the time until the replica region holds every
// change made during the partition.
func BenchmarkReplicationCatchUp(b *testing.B) {
	partition := 30 * time.Second
	if d, err := time.ParseDuration(getenv("TRENT_BENCH_PARTITION")); err == nil && d > 0 {
		partition = d
	}
	eu, us, l, keys := benchRegions(b)
	leader := us.Leader()
	b.ResetTimer()
	for range b.N {
		l.cut.Store(true)
		var mu sync.Mutex
		last := make(map[string]changeWatch)
		rotateAtRate(b, eu, keys, int(partition.Seconds()*benchRate), func(w changeWatch) {
			mu.Lock()
			if w.versions > last[w.key].versions {
				last[w.key] = w
			}
			mu.Unlock()
		})
		healed := time.Now()
		l.cut.Store(false)
		nodetest.WaitFor(b, 5*time.Minute, "catch-up", func() bool {
			for _, w := range last {
				if !replicaHas(us, leader, w) {
					return false
				}
			}
			return true
		})
		b.ReportMetric(time.Since(healed).Seconds(), "catch-up-s")
		b.ReportMetric(float64(len(last)), "keys")
	}
	b.ReportMetric(0, "ns/op")
	_ = fmt.Sprint()
}

func getenv(name string) string { return os.Getenv(name) }

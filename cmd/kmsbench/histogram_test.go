package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketIndexRoundTrips(t *testing.T) {
	values := []uint64{0, 1, 127, 128, 255, 256, 257, 1000, 1 << 20, 123456789, math.MaxInt64, math.MaxUint64}
	for _, v := range values {
		i := bucketIndex(v)
		if i < 0 || i >= histogramBuckets {
			t.Fatalf("bucketIndex(%d) = %d, outside [0,%d)", v, i, histogramBuckets)
		}
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d with bounds [%d,%d]", v, i, lo, hi)
		}
		if width := float64(hi-lo) + 1; v >= 256 && width/float64(lo) > 1.0/subBucketCount {
			t.Errorf("bucket %d [%d,%d] is wider than 1/%d of its lower bound", i, lo, hi, subBucketCount)
		}
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	_, prevHi := bucketBounds(0)
	for i := 1; i < histogramBuckets; i++ {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf("last bucket ends at %d, want MaxUint64", prevHi)
	}
}

func TestQuantilesWithinOnePercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	distributions := map[string]func() time.Duration{
		"uniform 50µs-5ms": func() time.Duration {
			return 50*time.Microsecond + time.Duration(rng.Int64N(int64(5*time.Millisecond)))
		},
		"exponential mean 1ms": func() time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		},
		"bimodal with slow tail": func() time.Duration {
			if rng.IntN(100) == 0 {
				return 200*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))
			}
			return 300*time.Microsecond + time.Duration(rng.Int64N(int64(100*time.Microsecond)))
		},
	}
	for name, draw := range distributions {
		t.Run(name, func(t *testing.T) {
			var h histogram
			exact := make([]time.Duration, 200_000)
			for i := range exact {
				exact[i] = draw()
				h.record(exact[i])
			}
			slices.Sort(exact)
			for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
				want := exact[int(math.Ceil(q*float64(len(exact))))-1]
				got := h.quantile(q)
				if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.01 {
					t.Errorf("q=%v: got %v, exact %v (error %.2f%%)", q, got, want, rel*100)
				}
			}
			if h.count() != uint64(len(exact)) {
				t.Errorf("count = %d, want %d", h.count(), len(exact))
			}
			if h.maxValue() != exact[len(exact)-1] {
				t.Errorf("max = %v, want %v", h.maxValue(), exact[len(exact)-1])
			}
		})
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	var h histogram
	for v := 1; v <= 100; v++ {
		h.record(time.Duration(v))
	}
	if got := h.quantile(0.5); got != 50 {
		t.Errorf("p50 = %d, want 50", got)
	}
	if got := h.quantile(0.99); got != 99 {
		t.Errorf("p99 = %d, want 99", got)
	}
	if got := h.mean(); got != 50 {
		t.Errorf("mean = %d, want 50 (50.5 truncated)", got)
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	var a, b, both histogram
	for i := range 1000 {
		d := time.Duration(i) * 7 * time.Microsecond
		both.record(d)
		if i%3 == 0 {
			a.record(d)
		} else {
			b.record(d)
		}
	}
	var merged histogram
	merged.merge(&a)
	merged.merge(&b)
	merged.merge(&histogram{})
	if merged != both {
		t.Fatalf("merged histogram differs: count %d/%d p50 %v/%v min %v/%v max %v/%v",
			merged.count(), both.count(), merged.quantile(0.5), both.quantile(0.5),
			merged.min, both.min, merged.max, both.max)
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.99) != 0 || h.mean() != 0 || h.count() != 0 || h.maxValue() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
}

func TestNegativeDurationRecordsAsZero(t *testing.T) {
	var h histogram
	h.record(-time.Second)
	if h.quantile(1) != 0 || h.count() != 1 {
		t.Fatalf("got p100 %v count %d", h.quantile(1), h.count())
	}
}

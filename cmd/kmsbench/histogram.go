package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records latencies in log-linear buckets, as HdrHistogram does:
// values below 2^(subBucketBits+1) ns get one bucket each, and every power of
// two above that is split into 2^subBucketBits equal buckets. A bucket is at
// most 1/2^subBucketBits of its lower bound wide, so reporting its midpoint is
// within half that (0.4% for 7 bits) of any value recorded in it. Recording
// is an index computation and an increment, cheap enough for every request.
//
// A histogram is not safe for concurrent use: give each worker its own and
// merge them at the end.
type histogram struct {
	counts [histogramBuckets]uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

const (
	subBucketBits    = 7
	subBucketCount   = 1 << subBucketBits
	histogramBuckets = (64-subBucketBits)*subBucketCount + subBucketCount
)

func bucketIndex(v uint64) int {
	n := bits.Len64(v)
	if n <= subBucketBits+1 {
		return int(v)
	}
	shift := n - subBucketBits - 1
	return shift<<subBucketBits + int(v>>shift)
}

// bucketBounds returns the smallest and largest value that land in bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < 2*subBucketCount {
		return uint64(i), uint64(i)
	}
	shift := i>>subBucketBits - 1
	mantissa := uint64(i - shift<<subBucketBits)
	lo = mantissa << shift
	return lo, lo + 1<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketIndex(uint64(v))]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
	h.sum += float64(v)
}

func (h *histogram) merge(o *histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
	h.sum += o.sum
}

func (h *histogram) count() uint64 { return h.total }

func (h *histogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

func (h *histogram) maxValue() time.Duration { return time.Duration(h.max) }

// quantile returns the value at or below which a fraction q of the recorded
// values lie (the nearest-rank definition), to within the bucket resolution.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	rank = min(rank, h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen < rank {
			continue
		}
		lo, hi := bucketBounds(i)
		mid := int64(lo + (hi-lo)/2)
		// The exact extremes are known; never report beyond them.
		return time.Duration(min(max(mid, h.min), h.max))
	}
	return time.Duration(h.max)
}

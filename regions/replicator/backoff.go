package replicator

import "time"

// backoffAfter is the wait after failures failures in a row: firstBackoff,
// doubling, capped at limit.
func backoffAfter(failures int, limit time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	return min(firstBackoff<<min(failures-1, 10), limit)
}

// retryPacer spaces out attempts at something that keeps failing: shipments
// to an unreachable region (under its destination's lock), or proposing the
// region's signing key while the region cannot commit, where each attempt
// generates a key in the HSM, which must not happen on every tick (Run's
// goroutine only).
type retryPacer struct {
	failures int
	next     time.Time
}

// ready reports whether an attempt may be made at now.
func (p *retryPacer) ready(now time.Time) bool { return !now.Before(p.next) }

// failed records a failed attempt at now and returns the wait before the next.
func (p *retryPacer) failed(now time.Time, limit time.Duration) time.Duration {
	p.failures++
	wait := backoffAfter(p.failures, limit)
	p.next = now.Add(wait)
	return wait
}

// succeeded resets the pacer.
func (p *retryPacer) succeeded() { *p = retryPacer{} }

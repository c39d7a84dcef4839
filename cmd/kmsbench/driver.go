package main

import (
	"context"
	"sync"
	"time"
)

// request issues one request and waits for its outcome.
type request func(ctx context.Context) error

// load describes a closed-loop run: concurrency workers, each issuing its
// next request as soon as the previous one completes.
type load struct {
	concurrency int
	warmup      time.Duration
	duration    time.Duration
	timeout     time.Duration
	// newWorker is called once per worker, before any request is sent, so a
	// worker can own state (buffers, a random source) without locking.
	newWorker func(worker int) request
}

// measurement is what a run observed inside its measured window.
type measurement struct {
	ops        uint64 // successful requests
	errors     uint64
	firstError error
	elapsed    time.Duration
	latency    histogram // successful requests only
}

type workerTally struct {
	latency      histogram
	errors       uint64
	firstError   error
	firstErrorAt time.Time
}

// run drives the load and returns what completed inside the measured window
// [start+warmup, start+warmup+duration). Requests still in flight at the end
// are waited for but not counted: counting by completion keeps
// rate = ops/duration exact, and at most concurrency requests are lost to it.
// If ctx is cancelled early, the window is cut short and the partial result
// is returned.
func (l load) run(ctx context.Context) measurement {
	workers := make([]request, l.concurrency)
	for i := range workers {
		workers[i] = l.newWorker(i)
	}
	tallies := make([]*workerTally, l.concurrency)
	measureStart := time.Now().Add(l.warmup)
	measureEnd := measureStart.Add(l.duration)

	var wg sync.WaitGroup
	for i, do := range workers {
		tally := &workerTally{}
		tallies[i] = tally
		wg.Go(func() {
			for ctx.Err() == nil {
				began := time.Now()
				if !began.Before(measureEnd) {
					return
				}
				reqCtx, cancel := context.WithTimeout(ctx, l.timeout)
				err := do(reqCtx)
				cancel()
				done := time.Now()
				if done.Before(measureStart) || !done.Before(measureEnd) {
					continue
				}
				if err == nil {
					tally.latency.record(done.Sub(began))
					continue
				}
				if ctx.Err() != nil {
					return // interrupted, not the server's fault
				}
				tally.errors++
				if tally.firstError == nil {
					tally.firstError, tally.firstErrorAt = err, done
				}
			}
		})
	}
	wg.Wait()

	var m measurement
	var firstErrorAt time.Time
	for _, t := range tallies {
		m.latency.merge(&t.latency)
		m.errors += t.errors
		if t.firstError != nil && (m.firstError == nil || t.firstErrorAt.Before(firstErrorAt)) {
			m.firstError, firstErrorAt = t.firstError, t.firstErrorAt
		}
	}
	m.ops = m.latency.count()
	stopped := time.Now()
	if stopped.After(measureEnd) {
		stopped = measureEnd
	}
	m.elapsed = max(stopped.Sub(measureStart), 0)
	return m
}

func (m measurement) rate() float64 {
	if m.elapsed <= 0 {
		return 0
	}
	return float64(m.ops) / m.elapsed.Seconds()
}

package fsm

import (
	"container/heap"
	"context"
	"sync"
)

// waiters parks WaitApplied callers until Apply reaches their index. Callers
// waiting for the same index (the common case: many requests behind one
// read-index round) share one channel, and Apply releases every index it has
// passed by popping a min-heap, so a release costs O(log n) per distinct
// index and nothing per waiter.
type waiters struct {
	mu      sync.Mutex
	byIndex map[uint64]*waitSlot
	pending indexHeap // may hold indexes whose waiters all gave up
}

type waitSlot struct {
	done    chan struct{}
	waiting int
}

// WaitApplied returns once AppliedIndex() >= index, or ctx's error if ctx
// ends first.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	if f.applied.Load() >= index {
		return nil
	}
	done := f.waiters.add(index, f.AppliedIndex)
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		f.waiters.abandon(index)
		if f.applied.Load() >= index {
			return nil
		}
		return ctx.Err()
	}
}

// add registers a waiter for index, or returns nil if applied() has reached
// it. Checking under the lock closes the race with a concurrent release.
func (w *waiters) add(index uint64, applied func() uint64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if applied() >= index {
		return nil
	}
	if w.byIndex == nil {
		w.byIndex = make(map[uint64]*waitSlot)
	}
	slot, ok := w.byIndex[index]
	if !ok {
		slot = &waitSlot{done: make(chan struct{})}
		w.byIndex[index] = slot
		heap.Push(&w.pending, index)
	}
	slot.waiting++
	return slot.done
}

// abandon forgets a waiter whose context ended, so a node that never reaches
// the index does not accumulate channels.
func (w *waiters) abandon(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	slot, ok := w.byIndex[index]
	if !ok {
		return
	}
	if slot.waiting--; slot.waiting == 0 {
		delete(w.byIndex, index)
		// The heap keeps the index until Apply passes it; rebuild it when
		// stale entries dominate (a long partition with clients giving up).
		if len(w.pending) > 64 && len(w.pending) > 2*len(w.byIndex) {
			w.pending = w.pending[:0]
			for i := range w.byIndex {
				w.pending = append(w.pending, i)
			}
			heap.Init(&w.pending)
		}
	}
}

// release wakes every waiter for an index <= applied.
func (w *waiters) release(applied uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.pending) > 0 && w.pending[0] <= applied {
		index := heap.Pop(&w.pending).(uint64)
		if slot, ok := w.byIndex[index]; ok {
			close(slot.done)
			delete(w.byIndex, index)
		}
	}
}

type indexHeap []uint64

func (h indexHeap) Len() int           { return len(h) }
func (h indexHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h indexHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *indexHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *indexHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

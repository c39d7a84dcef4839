package replicator

import (
	"sync"
	"time"
)

// maxRemembered bounds the nonces kept; past it the oldest are forgotten
// early, and a batch older than the oldest remembered one is refused as
// stale, so forgetting never admits a replay.
const maxRemembered = 1 << 16

// replayGuard remembers the nonces of batches accepted within the window.
type replayGuard struct {
	window time.Duration

	mu     sync.Mutex
	seen   map[string]int64 // nonce → sent time
	order  []string         // nonces in the order accepted
	oldest int64            // batches sent before this are refused
}

func newReplayGuard(window time.Duration) *replayGuard {
	return &replayGuard{window: window, seen: make(map[string]int64)}
}

// admit records nonce and reports whether the batch is fresh: sent within
// the window of now (either way, for clock skew), not before a nonce
// forgotten early, and not seen before.
func (g *replayGuard) admit(nonce []byte, sent, now time.Time) bool {
	if d := now.Sub(sent); d > g.window || d < -g.window {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	limit := now.Add(-g.window).UnixNano()
	for len(g.order) > 0 && (g.seen[g.order[0]] < limit || len(g.order) >= maxRemembered) {
		if len(g.order) >= maxRemembered {
			g.oldest = max(g.oldest, g.seen[g.order[0]]+1)
		}
		delete(g.seen, g.order[0])
		g.order = g.order[1:]
	}
	if sent.UnixNano() < g.oldest {
		return false
	}
	if _, dup := g.seen[string(nonce)]; dup {
		return false
	}
	g.seen[string(nonce)] = sent.UnixNano()
	g.order = append(g.order, string(nonce))
	return true
}

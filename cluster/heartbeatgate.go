package cluster

import (
	"sync"

	"github.com/hashicorp/raft"
)

// heartbeatGate wraps a Raft transport so that no heartbeat is still being
// handled once the transport is closed.
//
// Raft handles heartbeats on the transport's connection goroutine, outside
// the goroutines Shutdown waits for. A heartbeat that passed Raft's own
// shutdown check can still be saving a new term when Shutdown returns; if the
// node then closes its store, Raft panics ("failed to save current term:
// database not open"). Raft closes the transport after its own goroutines have
// stopped, so the gate's Close waits out any heartbeat in flight and turns away
// later ones, and the store is closed only after that.
type heartbeatGate struct {
	raft.Transport
	mu     sync.RWMutex
	closed bool
}

// closableTransport is a transport Raft closes on shutdown.
type closableTransport interface {
	raft.Transport
	raft.WithClose
}

// gateHeartbeats wraps t, keeping its optional pre-vote support visible to Raft.
func gateHeartbeats(t raft.Transport) closableTransport {
	g := &heartbeatGate{Transport: t}
	if pv, ok := t.(raft.WithPreVote); ok {
		return &preVoteHeartbeatGate{heartbeatGate: g, preVote: pv}
	}
	return g
}

func (g *heartbeatGate) SetHeartbeatHandler(handle func(rpc raft.RPC)) {
	g.Transport.SetHeartbeatHandler(func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.closed {
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
		handle(rpc)
	})
}

// Close waits for heartbeats being handled, refuses later ones and closes the
// wrapped transport when it can be closed. Only the first call closes it: Raft
// closes the gate on shutdown, and Node.Shutdown closes it again.
func (g *heartbeatGate) Close() error {
	g.mu.Lock()
	already := g.closed
	g.closed = true
	g.mu.Unlock()
	if already {
		return nil
	}
	if c, ok := g.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

type preVoteHeartbeatGate struct {
	*heartbeatGate
	preVote raft.WithPreVote
}

func (g *preVoteHeartbeatGate) RequestPreVote(id raft.ServerID, target raft.ServerAddress,
	args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return g.preVote.RequestPreVote(id, target, args, resp)
}

package cluster

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// IsLeader reports whether this node currently believes it is the leader. Only a read barrier
// proves it.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and Raft address as this node knows them; "" when unknown.
func (n *Node) Leader() (id, raftAddr string) {
	addr, sid := n.raft.LeaderWithID()
	return string(sid), string(addr)
}

// WaitForLeader blocks until this node knows a leader (possibly itself) and returns its id.
func (n *Node) WaitForLeader(ctx context.Context) (string, error) {
	for {
		changed := n.leaderSeen.wait()
		if id, _ := n.Leader(); id != "" {
			return id, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		case <-n.lifetime.Done():
			return "", ErrShutdown
		}
	}
}

// LeadershipChanges returns a new channel for one consumer, such as a leader-only loop. It first
// receives whether this node is the leader now, then every change. A slow receiver never blocks
// Raft and never reads a stale value: undelivered values are replaced by the latest, so two equal
// values in a row mean leadership was lost and regained (or the reverse) in between. The channel
// is closed by Shutdown. Each call adds a subscriber for the node's lifetime, so call it once
// per consumer.
func (n *Node) LeadershipChanges() <-chan bool { return n.leadership.subscribe() }

// startLeadershipWatch consumes raft's notify channel (raft blocks on it, so every transition
// arrives) and leader observations (which drive WaitForLeader).
func (n *Node) startLeadershipWatch(notify <-chan bool) {
	observations := make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)

	n.workers.Add(2)
	go func() {
		defer n.workers.Done()
		for {
			select {
			case leader := <-notify:
				n.leadership.publish(leader)
			case <-n.lifetime.Done():
				return
			}
		}
	}()
	go func() {
		defer n.workers.Done()
		defer n.raft.DeregisterObserver(n.observer)
		for {
			select {
			case <-observations:
				n.leaderSeen.notify()
			case <-n.lifetime.Done():
				n.leaderSeen.notify()
				return
			}
		}
	}()
}

// leadershipFanout hands leadership transitions to any number of subscribers, each through a
// one-slot channel holding the latest value.
type leadershipFanout struct {
	mu     sync.Mutex
	leader bool
	closed bool
	subs   []chan bool
}

func newLeadershipFanout() *leadershipFanout { return &leadershipFanout{} }

func (f *leadershipFanout) subscribe() <-chan bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan bool, 1)
	if f.closed {
		close(ch)
		return ch
	}
	ch <- f.leader
	f.subs = append(f.subs, ch)
	return ch
}

func (f *leadershipFanout) publish(leader bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = leader
	for _, ch := range f.subs {
		// Only publish sends, under f.mu, so after emptying the slot the send cannot block.
		select {
		case ch <- leader:
			continue
		default:
		}
		select {
		case <-ch:
		default:
		}
		ch <- leader
	}
}

func (f *leadershipFanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	for _, ch := range f.subs {
		close(ch)
	}
	f.subs = nil
}

// broadcast wakes every goroutine waiting for "something changed"; waiters re-check their
// condition after waking.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

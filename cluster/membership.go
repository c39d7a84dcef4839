package cluster

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Suffrage tells whether a server votes.
type Suffrage int

const (
	Voter Suffrage = iota
	Nonvoter
)

func (s Suffrage) String() string {
	if s == Voter {
		return "voter"
	}
	return "nonvoter"
}

// Server is one member of the Raft configuration.
type Server struct {
	ID       string
	Address  string // Raft address
	Suffrage Suffrage
	Leader   bool
}

// Servers lists the latest configuration as this node knows it (possibly not yet committed).
func (n *Node) Servers() ([]Server, error) {
	conf, _, err := n.configuration()
	if err != nil {
		return nil, err
	}
	leaderID, _ := n.Leader()
	servers := make([]Server, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		suffrage := Nonvoter
		if s.Suffrage == raft.Voter {
			suffrage = Voter
		}
		servers = append(servers, Server{
			ID:       string(s.ID),
			Address:  string(s.Address),
			Suffrage: suffrage,
			Leader:   string(s.ID) == leaderID,
		})
	}
	return servers, nil
}

// AddVoter adds (or promotes) a voting member. Leader only. Idempotent: a server already a
// voter with this id and address is left alone; a known id with a new address is updated.
// A different id holding the same address is an earlier incarnation of the joiner (two live
// servers cannot share an address) and is removed first, so a node rebuilt with a new id can
// rejoin.
func (n *Node) AddVoter(ctx context.Context, id, raftAddr string) error {
	return n.addServer(ctx, "add voter", id, raftAddr, raft.Voter)
}

// AddNonvoter adds a member that receives the log but does not vote. Leader only. Idempotent
// like AddVoter; it never demotes an existing voter.
func (n *Node) AddNonvoter(ctx context.Context, id, raftAddr string) error {
	return n.addServer(ctx, "add nonvoter", id, raftAddr, raft.Nonvoter)
}

func (n *Node) addServer(ctx context.Context, op, id, addr string, suffrage raft.ServerSuffrage) error {
	op = fmt.Sprintf("%s %s", op, id)
	conf, index, err := n.leaderConfiguration(op)
	if err != nil {
		return err
	}
	for _, s := range conf.Servers {
		switch {
		case string(s.ID) == id && string(s.Address) == addr:
			if s.Suffrage == raft.Voter || suffrage == raft.Nonvoter {
				return nil
			}
		case string(s.Address) == addr && string(s.ID) == n.cfg.NodeID:
			return fmt.Errorf("%s: address %s belongs to this node", op, addr)
		case string(s.Address) == addr:
			f := n.raft.RemoveServer(s.ID, index, enqueueTimeout(ctx))
			if err := await(ctx, f); err != nil {
				return n.translate(op+": remove stale "+string(s.ID), err)
			}
			index = f.Index()
		}
	}
	var f raft.IndexFuture
	if suffrage == raft.Voter {
		f = n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), index, enqueueTimeout(ctx))
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), index, enqueueTimeout(ctx))
	}
	return n.translate(op, await(ctx, f))
}

// RemoveServer removes a member. Leader only. ErrUnknownServer if id is not in the
// configuration; ErrLastVoter if it is the only voter. A leader may remove itself: it steps
// down once the change commits.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	op := "remove server " + id
	conf, index, err := n.leaderConfiguration(op)
	if err != nil {
		return err
	}
	var found, isVoter bool
	voters := 0
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == id {
			found, isVoter = true, s.Suffrage == raft.Voter
		}
	}
	switch {
	case !found:
		return fmt.Errorf("%s: %w", op, ErrUnknownServer)
	case isVoter && voters == 1:
		return fmt.Errorf("%s: %w", op, ErrLastVoter)
	}
	f := n.raft.RemoveServer(raft.ServerID(id), index, enqueueTimeout(ctx))
	return n.translate(op, await(ctx, f))
}

// leaderConfiguration returns the configuration and its index for a leader-only change. The
// index makes the change conditional: raft rejects it if the configuration moved meanwhile.
func (n *Node) leaderConfiguration(op string) (raft.Configuration, uint64, error) {
	if n.isShutdown() {
		return raft.Configuration{}, 0, ErrShutdown
	}
	if n.raft.State() != raft.Leader {
		return raft.Configuration{}, 0, fmt.Errorf("%s: %w", op, n.notLeader())
	}
	conf, index, err := n.configuration()
	if err != nil {
		return raft.Configuration{}, 0, fmt.Errorf("%s: %w", op, err)
	}
	return conf, index, nil
}

func (n *Node) configuration() (raft.Configuration, uint64, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, n.translate("get configuration", err)
	}
	return f.Configuration(), f.Index(), nil
}

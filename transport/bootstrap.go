package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/internalpb"
)

// ErrJoinRefused: the member refused to admit this node (wrong join secret
// or bad request); retrying cannot help.
var ErrJoinRefused = errors.New("join refused")

// NodeAddrs are the addresses a node is reached at.
type NodeAddrs struct {
	Raft string
	GRPC string
}

// InitRegion makes a freshly bootstrapped node's region usable: it generates
// the first domain key in this node's HSM and proposes the region record. A
// region that already has one is left alone, so a node that crashed between
// bootstrap and this call can simply call it again.
func (s *Server) InitRegion(ctx context.Context, name string, addrs NodeAddrs) error {
	if s.fsm.Region() != nil {
		return nil
	}
	dkID, err := newDomainKeyID()
	if err != nil {
		return err
	}
	if err := s.hsm.CreateDomainKey(ctx, dkID); err != nil {
		return fmt.Errorf("create domain key: %w", err)
	}
	cmd := &fsmpb.Command{Op: &fsmpb.Command_InitRegion{InitRegion: &fsmpb.InitRegion{
		Name:      name,
		DomainKey: &fsmpb.DomainKey{Id: dkID, CreationTimeUnixNano: s.now().UnixNano()},
		Node:      &fsmpb.Node{Id: s.cfg.NodeID, RaftAddr: addrs.Raft, GrpcAddr: addrs.GRPC},
	}}}
	if _, err := s.propose(ctx, cmd); err != nil && !errors.Is(err, fsm.ErrAlreadyExists) {
		return fmt.Errorf("initialise region: %w", err)
	}
	s.log.Info("region initialised", "region", name, "domain_key", dkID)
	return nil
}

func newDomainKeyID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "dk-" + hex.EncodeToString(b), nil
}

// JoinRegion asks a member at seedAddr to admit this node: it presents the
// join secret and this HSM's transport public key, then imports the domain
// keys the member wrapped to it. This node's Raft must already be running so
// the leader can replicate to it.
func (s *Server) JoinRegion(ctx context.Context, seedAddr string, secret []byte, addrs NodeAddrs) error {
	pub, err := s.hsm.TransportPublicKey(ctx)
	if err != nil {
		return fmt.Errorf("transport key: %w", err)
	}
	client, err := s.peers.internal(seedAddr)
	if err != nil {
		return err
	}
	resp, err := client.Join(ctx, &internalpb.JoinRequest{
		NodeId:             s.cfg.NodeID,
		RaftAddr:           addrs.Raft,
		GrpcAddr:           addrs.GRPC,
		TransportPublicKey: pub,
		JoinSecret:         secret,
	})
	if err != nil {
		switch status.Code(err) {
		case codes.PermissionDenied, codes.InvalidArgument:
			return fmt.Errorf("%w: %s: %s", ErrJoinRefused, seedAddr, status.Convert(err).Message())
		}
		return fmt.Errorf("join via %s: %w", seedAddr, err)
	}
	for _, dk := range resp.GetDomainKeys() {
		if err := s.hsm.ImportDomainKey(ctx, dk.GetId(), dk.GetWrapped()); err != nil {
			return fmt.Errorf("import domain key %s: %w", dk.GetId(), err)
		}
	}
	s.log.Info("joined region", "region", resp.GetRegion(), "via", seedAddr, "domain_keys", len(resp.GetDomainKeys()))
	return nil
}

// EnsureRegistered re-records this node's addresses when they differ from
// the region's registry (a node restarted on new ports).
func (s *Server) EnsureRegistered(ctx context.Context, addrs NodeAddrs) error {
	if n, ok := s.fsm.Node(s.cfg.NodeID); ok && n.GetRaftAddr() == addrs.Raft && n.GetGrpcAddr() == addrs.GRPC {
		return nil
	}
	node := &fsmpb.Node{Id: s.cfg.NodeID, RaftAddr: addrs.Raft, GrpcAddr: addrs.GRPC}
	_, err := s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_RegisterNode{RegisterNode: &fsmpb.RegisterNode{Node: node}}})
	return err
}

// WaitReady blocks until this node can serve linearizable requests: a leader
// is reachable, this node has caught up with it, and the region exists.
func (s *Server) WaitReady(ctx context.Context) error {
	for {
		err := s.readBarrier(ctx)
		if err == nil && s.fsm.Region() != nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("node not ready: %w (last: %v)", ctx.Err(), err)
		}
		waitCtx, cancel := context.WithTimeout(ctx, proposeRetryMax)
		<-waitCtx.Done()
		cancel()
	}
}

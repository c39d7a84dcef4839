package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/regions/replicator"
	"github.com/trent-kms/trent/regions/replicator/replpb"
)

// Replication receives other regions' shipments of multi-region keys
// (regions/replicator).
type Replication interface {
	Hello(ctx context.Context) (*replpb.HelloResponse, error)
	Ship(ctx context.Context, fromRegion string, req *replpb.ShipRequest) (*replpb.ShipResponse, error)
}

// SetReplication installs the receiver of other regions' shipments; until
// then the Replication service answers Unavailable. Call it before the
// server serves.
func (s *Server) SetReplication(r Replication) { s.replication = r }

// Propose applies cmd through this region's Raft, forwarding it to the
// leader when this node does not lead; a command Apply rejected returns its
// error. It is how the replicator writes.
func (s *Server) Propose(ctx context.Context, cmd *fsmpb.Command) (*fsm.Result, error) {
	return s.propose(ctx, cmd)
}

type replicationService struct {
	replpb.UnimplementedReplicationServer
	s *Server
}

func (r *replicationService) Hello(ctx context.Context, _ *replpb.HelloRequest) (*replpb.HelloResponse, error) {
	if r.s.replication == nil {
		return nil, errNoReplication
	}
	resp, err := r.s.replication.Hello(ctx)
	return resp, replicationStatus(err)
}

func (r *replicationService) Ship(ctx context.Context, req *replpb.ShipRequest) (*replpb.ShipResponse, error) {
	if r.s.replication == nil {
		return nil, errNoReplication
	}
	id, err := peerIdentity(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "AccessDeniedException: no verified node certificate")
	}
	resp, err := r.s.replication.Ship(ctx, id.Region, req)
	return resp, replicationStatus(err)
}

var errNoReplication = status.Error(codes.Unavailable, "KMSInternalException: replication is not running on this node")

func replicationStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replicator.ErrForged), errors.Is(err, replicator.ErrReplayed):
		return status.Error(codes.PermissionDenied, fmt.Sprintf("AccessDeniedException: %v", err))
	case errors.Is(err, replicator.ErrMisdirected), errors.Is(err, replicator.ErrMalformed):
		return status.Error(codes.InvalidArgument, fmt.Sprintf("ValidationException: %v", err))
	case errors.Is(err, replicator.ErrNotReady):
		return status.Error(codes.Unavailable, fmt.Sprintf("KMSInternalException: %v", err))
	}
	return statusFor(err)
}

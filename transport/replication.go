package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/regions/replicator"
	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

// Replication receives other regions' shipments of multi-region keys
// (regions/replicator).
type Replication interface {
	Hello(ctx context.Context) (*replpb.HelloResponse, error)
	Ship(ctx context.Context, fromRegion string, req *replpb.ShipRequest) (*replpb.ShipResponse, error)
	// Status reports the destinations this node shipped to while leading.
	Status() []replicator.DestinationStatus
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

// replicationStatus summarises, per destination region, the replication
// work in this region's replicated state, plus what the local replicator
// saw when this node led.
func (s *Server) replicationStatus() []*kmspb.ReplicationDestination {
	here := s.region()
	now := s.now().UnixNano()
	byRegion := make(map[string]*kmspb.ReplicationDestination)
	dest := func(name string) *kmspb.ReplicationDestination {
		d, ok := byRegion[name]
		if !ok {
			d = &kmspb.ReplicationDestination{Region: name}
			byRegion[name] = d
		}
		return d
	}
	for _, k := range s.fsm.MultiRegionKeysToShip("") {
		mr := k.GetMultiRegion()
		if mr.GetPrimaryRegion() != here {
			dest(mr.GetPrimaryRegion()).KeysToSendBack++
			continue
		}
		for _, rep := range mr.GetReplicas() {
			if rep.GetAckedSeq() >= mr.GetSharedSeq() {
				continue
			}
			d := dest(rep.GetRegion())
			d.KeysBehind++
			d.PendingChanges += mr.GetSharedSeq() - rep.GetAckedSeq()
			d.LagMillis = max(d.LagMillis, replicaLagMillis(rep, now))
		}
	}
	if s.replication != nil {
		for _, st := range s.replication.Status() {
			d := dest(st.Region)
			d.LastError = st.LastError
			d.LastErrorTime = timeSeconds(st.LastErrorTime)
			d.LastSuccessTime = timeSeconds(st.LastSuccess)
		}
	}
	out := make([]*kmspb.ReplicationDestination, 0, len(byRegion))
	for _, d := range byRegion {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *kmspb.ReplicationDestination) int { return strings.Compare(a.GetRegion(), b.GetRegion()) })
	return out
}

func timeSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return unixSeconds(t.UnixNano())
}

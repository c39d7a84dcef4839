package transport

import (
	"context"

	"github.com/trent-kms/trent/transport/kmspb"
)

// ManagementEvents returns the management commands the region has applied,
// as recorded in its replicated state: the same on every node, unlike the
// per-node audit logs.
func (s *Server) ManagementEvents(ctx context.Context, req *kmspb.ManagementEventsRequest) (*kmspb.ManagementEventsResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, access{action: actionManagementEvents}); err != nil {
		return nil, err
	}
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	events := s.fsm.ManagementEvents(req.GetAfterIndex(), limit+1)
	resp := &kmspb.ManagementEventsResponse{}
	if len(events) > limit {
		events, resp.Truncated = events[:limit], true
	}
	for _, e := range events {
		resp.Events = append(resp.Events, &kmspb.ManagementEvent{
			Index:     e.GetIndex(),
			Time:      unixSeconds(e.GetTimeUnixNano()),
			Principal: e.GetPrincipal(),
			Operation: e.GetOperation(),
			KeyId:     e.GetKeyId(),
			AliasName: e.GetAliasName(),
			GrantId:   e.GetGrantId(),
			Error:     e.GetErrorKind(),
		})
	}
	return resp, nil
}

package transport

import (
	"context"
	"slices"

	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

func (s *Server) TagResource(ctx context.Context, req *kmspb.TagResourceRequest) (*kmspb.TagResourceResponse, error) {
	tags, err := validateTags(req.GetTags())
	if err != nil {
		return nil, err
	}
	_, err = s.proposeForKey(ctx, actionTagResource, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_TagResource{TagResource: &fsmpb.TagResource{KeyId: id, Tags: tags}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.TagResourceResponse{}, nil
}

func (s *Server) UntagResource(ctx context.Context, req *kmspb.UntagResourceRequest) (*kmspb.UntagResourceResponse, error) {
	if len(req.GetTagKeys()) == 0 {
		return nil, invalid("TagKeys", "at least one tag key is required")
	}
	for _, k := range req.GetTagKeys() {
		if k == "" || len(k) > maxTagKeyLen {
			return nil, invalid("TagKeys", "%q must be 1..%d characters", k, maxTagKeyLen)
		}
	}
	_, err := s.proposeForKey(ctx, actionUntagResource, req.GetKeyId(), func(id string) *fsmpb.Command {
		return &fsmpb.Command{Op: &fsmpb.Command_UntagResource{UntagResource: &fsmpb.UntagResource{KeyId: id, TagKeys: req.GetTagKeys()}}}
	})
	if err != nil {
		return nil, err
	}
	return &kmspb.UntagResourceResponse{}, nil
}

// ListResourceTags lists tags sorted by key; the marker is the last key
// returned.
func (s *Server) ListResourceTags(ctx context.Context, req *kmspb.ListResourceTagsRequest) (*kmspb.ListResourceTagsResponse, error) {
	limit, err := listLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionListResourceTags}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(k.GetTags()))
	for name := range k.GetTags() {
		if name > req.GetMarker() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	resp := &kmspb.ListResourceTagsResponse{}
	if len(names) > limit {
		names = names[:limit]
		resp.Truncated = true
		resp.NextMarker = names[len(names)-1]
	}
	for _, name := range names {
		resp.Tags = append(resp.Tags, &kmspb.Tag{TagKey: name, TagValue: k.GetTags()[name]})
	}
	return resp, nil
}

package fsm

import (
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Tag limits as AWS KMS documents them.
const (
	maxTagsPerKey    = 50
	maxTagKeyChars   = 128
	maxTagValueChars = 256
)

func (s *state) applyTagResource(op *fsmpb.TagResource) *Result {
	k, r := s.keyIn(op.GetKeyId(), "TagResource", enabled, disabled)
	if r != nil {
		return r
	}
	tags := op.GetTags()
	if len(tags) == 0 {
		return reject(ErrInvalidArgument, "key %s: TagResource needs at least one tag", k.GetKeyId())
	}
	if r := checkTags(k.GetKeyId(), tags); r != nil {
		return r
	}
	total := len(k.GetTags())
	for tagKey := range tags {
		if _, exists := k.GetTags()[tagKey]; !exists {
			total++
		}
	}
	if total > maxTagsPerKey {
		return reject(ErrLimitExceeded, "key %s would have %d tags; the limit is %d", k.GetKeyId(), total, maxTagsPerKey)
	}
	return s.updateKey(k, func(k *fsmpb.Key) {
		if k.Tags == nil {
			k.Tags = make(map[string]string, len(tags))
		}
		maps.Copy(k.Tags, tags)
	})
}

func (s *state) applyUntagResource(op *fsmpb.UntagResource) *Result {
	k, r := s.keyIn(op.GetKeyId(), "UntagResource", enabled, disabled)
	if r != nil {
		return r
	}
	if len(op.GetTagKeys()) == 0 {
		return reject(ErrInvalidArgument, "key %s: UntagResource needs at least one tag key", k.GetKeyId())
	}
	present := slices.ContainsFunc(op.GetTagKeys(), func(tagKey string) bool {
		_, ok := k.GetTags()[tagKey]
		return ok
	})
	if !present {
		return &Result{Key: k}
	}
	return s.updateKey(k, func(k *fsmpb.Key) {
		for _, tagKey := range op.GetTagKeys() {
			delete(k.Tags, tagKey)
		}
	})
}

// checkTags validates tag keys and values in sorted order, so the message
// names the same tag on every node.
func checkTags(keyID string, tags map[string]string) *Result {
	for _, tagKey := range slices.Sorted(maps.Keys(tags)) {
		if n := utf8.RuneCountInString(tagKey); n == 0 || n > maxTagKeyChars {
			return reject(ErrInvalidArgument, "key %s: tag key %.40q has %d characters; it needs 1..%d",
				keyID, tagKey, n, maxTagKeyChars)
		}
		if n := utf8.RuneCountInString(tags[tagKey]); n > maxTagValueChars {
			return reject(ErrInvalidArgument, "key %s: value of tag %.40q has %d characters; the limit is %d",
				keyID, tagKey, n, maxTagValueChars)
		}
	}
	return nil
}

package transport

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/trent-kms/trent/transport/kmspb"
)

// Limits as AWS KMS documents them for the same fields.
const (
	maxDescriptionLen   = 8192
	maxKeyRefLen        = 2048
	maxAliasNameLen     = 256
	maxTagKeyLen        = 128
	maxTagValueLen      = 256
	minPendingWindow    = 7
	maxPendingWindow    = 30
	defaultPendingDays  = 30
	minRotationDays     = 90
	maxRotationDays     = 2560
	defaultRotationDays = 365
	defaultListLimit    = 100
	maxListLimit        = 1000
	aliasPrefix         = "alias/"
	reservedAliasPrefix = "alias/aws/"
)

var aliasNamePattern = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)

func requireKeyRef(field, ref string) error {
	switch {
	case ref == "":
		return invalid(field, "is required")
	case len(ref) > maxKeyRefLen:
		return invalid(field, "length %d exceeds the maximum %d", len(ref), maxKeyRefLen)
	}
	return nil
}

func validateAliasName(field, name string) error {
	switch {
	case name == "":
		return invalid(field, "is required")
	case len(name) > maxAliasNameLen:
		return invalid(field, "length %d exceeds the maximum %d", len(name), maxAliasNameLen)
	case !strings.HasPrefix(name, aliasPrefix):
		return invalid(field, "%q must begin with %q", name, aliasPrefix)
	case strings.HasPrefix(name, reservedAliasPrefix):
		return invalid(field, "%q uses the reserved prefix %q", name, reservedAliasPrefix)
	case !aliasNamePattern.MatchString(name):
		return invalid(field, "%q must match %s", name, aliasNamePattern)
	}
	return nil
}

func validateDescription(desc string) error {
	switch {
	case len(desc) > maxDescriptionLen:
		return invalid("Description", "length %d exceeds the maximum %d", len(desc), maxDescriptionLen)
	case !utf8.ValidString(desc):
		return invalid("Description", "is not valid UTF-8")
	}
	return nil
}

func validateTags(tags []*kmspb.Tag) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, invalid("Tags", "at least one tag is required")
	}
	out := make(map[string]string, len(tags))
	for i, t := range tags {
		switch {
		case t.GetTagKey() == "":
			return nil, invalid("Tags", "tag %d: TagKey is required", i+1)
		case len(t.GetTagKey()) > maxTagKeyLen:
			return nil, invalid("Tags", "tag %d: TagKey length %d exceeds the maximum %d", i+1, len(t.GetTagKey()), maxTagKeyLen)
		case len(t.GetTagValue()) > maxTagValueLen:
			return nil, invalid("Tags", "tag %q: TagValue length %d exceeds the maximum %d", t.GetTagKey(), len(t.GetTagValue()), maxTagValueLen)
		case strings.HasPrefix(t.GetTagKey(), "aws:"):
			return nil, invalid("Tags", "tag %q: the prefix \"aws:\" is reserved", t.GetTagKey())
		case !utf8.ValidString(t.GetTagKey()) || !utf8.ValidString(t.GetTagValue()):
			return nil, invalid("Tags", "tag %d: is not valid UTF-8", i+1)
		}
		if _, dup := out[t.GetTagKey()]; dup {
			return nil, invalid("Tags", "tag %q appears twice", t.GetTagKey())
		}
		out[t.GetTagKey()] = t.GetTagValue()
	}
	return out, nil
}

// listLimit applies the default and range of a Limit field.
func listLimit(limit int32) (int, error) {
	switch {
	case limit == 0:
		return defaultListLimit, nil
	case limit < 1 || limit > maxListLimit:
		return 0, invalid("Limit", "%d is outside 1..%d", limit, maxListLimit)
	}
	return int(limit), nil
}

// defaulted returns def when v is the zero value.
func defaulted[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

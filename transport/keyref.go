package transport

import (
	"context"
	"fmt"
	"strings"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Resource names have the shape of AWS ARNs with an empty account field, so
// tools that split ARNs on ':' keep working: arn:trent:kms:REGION::key/ID.
const arnPrefix = "arn:trent:kms:"

func keyARN(region, keyID string) string { return arnPrefix + region + "::key/" + keyID }

func aliasARN(region, name string) string { return arnPrefix + region + "::" + name }

// resolveKey finds the key a caller named by id, alias name, key ARN or alias
// ARN. field names the request field in errors. The audit record notes the
// key and the alias, if one was used (even one that does not exist).
func (s *Server) resolveKey(ctx context.Context, field, ref string) (*fsmpb.Key, error) {
	k, _, err := s.resolveKeyVia(ctx, field, ref)
	return k, err
}

// resolveKeyVia is resolveKey that also returns the alias the caller named
// the key by ("" if none), which policy conditions on kms:ViaAlias test.
func (s *Server) resolveKeyVia(ctx context.Context, field, ref string) (*fsmpb.Key, string, error) {
	if err := requireKeyRef(field, ref); err != nil {
		return nil, "", err
	}
	name := ref
	if strings.HasPrefix(ref, arnPrefix) {
		rest := strings.TrimPrefix(ref, arnPrefix)
		region, resource, ok := strings.Cut(rest, "::")
		if !ok || resource == "" {
			return nil, "", invalid(field, "%q is not a key or alias resource name (%sREGION::key/ID)", ref, arnPrefix)
		}
		if region != s.region() {
			return nil, "", fmt.Errorf("%w: %s: %q names region %q; this is region %q", fsm.ErrNotFound, field, ref, region, s.region())
		}
		switch {
		case strings.HasPrefix(resource, "key/"):
			name = strings.TrimPrefix(resource, "key/")
		case strings.HasPrefix(resource, aliasPrefix):
			name = resource
		default:
			return nil, "", invalid(field, "%q is not a key or alias resource name", ref)
		}
	}
	aliasName := ""
	if strings.HasPrefix(name, aliasPrefix) {
		aliasName = name
		alias, ok := s.fsm.Alias(name)
		if !ok {
			noteResolved(ctx, aliasName, "")
			return nil, "", fmt.Errorf("%w: alias %s does not exist", fsm.ErrNotFound, name)
		}
		name = alias.GetTargetKeyId()
	}
	noteResolved(ctx, aliasName, name)
	key, ok := s.fsm.Key(name)
	if !ok {
		return nil, "", fmt.Errorf("%w: key %s does not exist", fsm.ErrNotFound, name)
	}
	return key, aliasName, nil
}

func (s *Server) region() string {
	if r := s.fsm.Region(); r != nil {
		return r.GetName()
	}
	return s.cfg.Region
}

package fsm

import (
	"strings"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

const (
	aliasPrefix         = "alias/"
	reservedAliasPrefix = "alias/aws/"
	maxAliasNameLen     = 256
)

func (s *state) applyCreateAlias(now int64, op *fsmpb.CreateAlias) *Result {
	name := op.GetAliasName()
	if r := checkAliasName(name); r != nil {
		return r
	}
	if _, exists := s.aliases.get(name); exists {
		return reject(ErrAlreadyExists, "alias %s already exists", name)
	}
	if _, r := s.aliasTarget(name, op.GetTargetKeyId(), "CreateAlias"); r != nil {
		return r
	}
	a := &fsmpb.Alias{
		Name:                    name,
		TargetKeyId:             op.GetTargetKeyId(),
		CreationTimeUnixNano:    now,
		LastUpdatedTimeUnixNano: now,
	}
	s.aliases.put(name, a)
	return &Result{Alias: a}
}

func (s *state) applyUpdateAlias(now int64, op *fsmpb.UpdateAlias) *Result {
	name := op.GetAliasName()
	if r := checkAliasName(name); r != nil {
		return r
	}
	old, exists := s.aliases.get(name)
	if !exists {
		return reject(ErrNotFound, "alias %s does not exist", name)
	}
	target, r := s.aliasTarget(name, op.GetTargetKeyId(), "UpdateAlias")
	if r != nil {
		return r
	}
	// As in AWS: code that resolves the alias must not suddenly get a key
	// of another kind or usage.
	if current, ok := s.keys.get(old.GetTargetKeyId()); ok {
		if keyClass(current) != keyClass(target) || current.GetKeyUsage() != target.GetKeyUsage() {
			return reject(ErrInvalidArgument,
				"alias %s points at %s key %s (%s); UpdateAlias cannot point it at %s key %s (%s)",
				name, keyClass(current), current.GetKeyId(), current.GetKeyUsage(),
				keyClass(target), target.GetKeyId(), target.GetKeyUsage())
		}
	}
	a := &fsmpb.Alias{
		Name:                    name,
		TargetKeyId:             target.GetKeyId(),
		CreationTimeUnixNano:    old.GetCreationTimeUnixNano(),
		LastUpdatedTimeUnixNano: now,
	}
	s.aliases.put(name, a)
	return &Result{Alias: a}
}

func (s *state) applyDeleteAlias(op *fsmpb.DeleteAlias) *Result {
	name := op.GetAliasName()
	a, exists := s.aliases.get(name)
	if !exists {
		return reject(ErrNotFound, "alias %s does not exist", name)
	}
	s.aliases.remove(name)
	return &Result{Alias: a}
}

// aliasTarget returns the key an alias may point at.
func (s *state) aliasTarget(alias, keyID, action string) (*fsmpb.Key, *Result) {
	if keyID == "" {
		return nil, reject(ErrInvalidArgument, "alias %s: %s needs a target key id", alias, action)
	}
	k, ok := s.keys.get(keyID)
	if !ok {
		return nil, reject(ErrNotFound, "key %s does not exist", keyID)
	}
	if k.GetState() == pendingDeletion {
		return nil, reject(ErrInvalidState, "key %s is pending deletion; %s needs Enabled or Disabled", keyID, action)
	}
	return k, nil
}

// checkAliasName applies AWS's rule: alias/ followed by letters, digits and
// / _ -, at most 256 characters, outside the reserved alias/aws/ space.
func checkAliasName(name string) *Result {
	rest, ok := strings.CutPrefix(name, aliasPrefix)
	switch {
	case !ok || rest == "":
		return reject(ErrInvalidArgument, "alias name %q must be %s followed by a name", name, aliasPrefix)
	case len(name) > maxAliasNameLen:
		return reject(ErrInvalidArgument, "alias name %.40q... has %d characters; the limit is %d", name, len(name), maxAliasNameLen)
	case strings.HasPrefix(name, reservedAliasPrefix):
		return reject(ErrInvalidArgument, "alias name %s is in the reserved %s space", name, reservedAliasPrefix)
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-') {
			return reject(ErrInvalidArgument, "alias name %q contains %q; only letters, digits, / _ and - are allowed", name, c)
		}
	}
	return nil
}

// keyClass is the kind of key AWS compares in UpdateAlias.
func keyClass(k *fsmpb.Key) string {
	spec := k.GetKeySpec()
	switch {
	case spec == "SYMMETRIC_DEFAULT":
		return "symmetric"
	case strings.HasPrefix(spec, "HMAC_"):
		return "HMAC"
	default:
		return "asymmetric"
	}
}

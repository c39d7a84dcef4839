package fsm

import (
	"bytes"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Limits as AWS KMS documents them.
const (
	minPendingWindowDays = 7
	maxPendingWindowDays = 30
	maxDescriptionChars  = 8192
	versionIDLen         = 16
)

const (
	enabled         = fsmpb.KeyState_KEY_STATE_ENABLED
	disabled        = fsmpb.KeyState_KEY_STATE_DISABLED
	pendingDeletion = fsmpb.KeyState_KEY_STATE_PENDING_DELETION
)

// FindVersion returns the version of k with that id. Newest first: recent
// ciphertexts are the common case.
func FindVersion(k *fsmpb.Key, versionID []byte) (*fsmpb.KeyVersion, bool) {
	versions := k.GetVersions()
	for i := len(versions) - 1; i >= 0; i-- {
		if bytes.Equal(versions[i].GetVersionId(), versionID) {
			return versions[i], true
		}
	}
	return nil, false
}

// CurrentVersion returns the version new ciphertexts use, nil for a key
// without one. A multi-region key names it (versions merged from other
// regions may be newer but are never current); otherwise it is the newest
// version that is not pending.
func CurrentVersion(k *fsmpb.Key) *fsmpb.KeyVersion {
	if mr := k.GetMultiRegion(); mr != nil {
		if v, ok := FindVersion(k, mr.GetCurrentVersionId()); ok {
			return v
		}
	}
	versions := k.GetVersions()
	for i := len(versions) - 1; i >= 0; i-- {
		if !versions[i].GetPending() {
			return versions[i]
		}
	}
	return nil
}

// checkKeyAttributes checks what a command creating key k (CreateKey,
// ImportReplicaKey) says about it besides its id and versions: the required
// fields, description, tags and policy.
func checkKeyAttributes(action string, k *fsmpb.Key) *Result {
	id := k.GetKeyId()
	for _, required := range []struct{ name, value string }{
		{"key spec", k.GetKeySpec()},
		{"key usage", k.GetKeyUsage()},
		{"protection level", k.GetProtectionLevel()},
	} {
		if required.value == "" {
			return reject(ErrInvalidArgument, "key %s: %s needs a %s", id, action, required.name)
		}
	}
	if r := checkDescription(id, k.GetDescription()); r != nil {
		return r
	}
	if r := checkTags(id, k.GetTags()); r != nil {
		return r
	}
	if n := len(k.GetTags()); n > maxTagsPerKey {
		return reject(ErrLimitExceeded, "key %s: %s with %d tags; the limit is %d", id, action, n, maxTagsPerKey)
	}
	return checkPolicy(id, k.GetPolicy())
}

func (s *state) applyCreateKey(now int64, principal string, op *fsmpb.CreateKey) *Result {
	k := op.GetKey()
	id := k.GetKeyId()
	if id == "" {
		return reject(ErrInvalidArgument, "CreateKey needs a key id")
	}
	if _, exists := s.keys.get(id); exists {
		return reject(ErrAlreadyExists, "key %s already exists", id)
	}
	if r := checkKeyAttributes("CreateKey", k); r != nil {
		return r
	}
	if n := len(k.GetVersions()); n != 1 {
		return reject(ErrInvalidArgument, "key %s: CreateKey needs exactly one key version, got %d", id, n)
	}
	if r := s.checkVersion(id, k.GetVersions()[0]); r != nil {
		return r
	}
	multiRegion := k.GetMultiRegion() != nil
	if multiRegion && !IsMRKID(id) {
		return reject(ErrInvalidArgument, "key %s: a multi-region key id is %s followed by 32 lowercase hex digits", id, MRKPrefix)
	}
	if !multiRegion && strings.HasPrefix(id, MRKPrefix) {
		return reject(ErrInvalidArgument, "key %s: ids starting with %s are reserved for multi-region keys", id, MRKPrefix)
	}

	// Apply owns the lifecycle fields: whatever the proposer put there is
	// overwritten, so every key starts the same way.
	k.State = enabled
	k.CreationTimeUnixNano = now
	k.DeletionTimeUnixNano = 0
	k.PendingWindowDays = 0
	k.RotationEnabled = false
	k.RotationPeriodDays = 0
	k.NextRotationTimeUnixNano = 0
	k.Creator = principal
	k.Versions[0].CreationTimeUnixNano = now
	k.Versions[0].RotationType = ""
	k.Versions[0].Pending = false
	k.Versions[0].Unshipped = false
	if multiRegion {
		s.initMultiRegion(k)
	}
	s.putKey(k)
	return &Result{Key: k}
}

func (s *state) applyUpdateKeyDescription(op *fsmpb.UpdateKeyDescription) *Result {
	k, r := s.keyIn(op.GetKeyId(), "UpdateKeyDescription", enabled, disabled)
	if r != nil {
		return r
	}
	if r := checkDescription(k.GetKeyId(), op.GetDescription()); r != nil {
		return r
	}
	return s.updateKey(k, func(k *fsmpb.Key) { k.Description = op.GetDescription() })
}

func (s *state) applySetKeyEnabled(op *fsmpb.SetKeyEnabled) *Result {
	action, target := "DisableKey", disabled
	if op.GetEnabled() {
		action, target = "EnableKey", enabled
	}
	k, r := s.keyIn(op.GetKeyId(), action, enabled, disabled)
	if r != nil {
		return r
	}
	if k.GetState() == target {
		return &Result{Key: k}
	}
	return s.updateKey(k, func(k *fsmpb.Key) { k.State = target })
}

func (s *state) applyScheduleKeyDeletion(now int64, op *fsmpb.ScheduleKeyDeletion) *Result {
	days := op.GetPendingWindowDays()
	if days < minPendingWindowDays || days > maxPendingWindowDays {
		return reject(ErrInvalidArgument, "key %s: pending window of %d days is outside %d..%d",
			op.GetKeyId(), days, minPendingWindowDays, maxPendingWindowDays)
	}
	k, r := s.keyIn(op.GetKeyId(), "ScheduleKeyDeletion", enabled, disabled)
	if r != nil {
		return r
	}
	deletion, ok := addDays(now, days)
	if !ok {
		return reject(ErrInvalidArgument, "key %s: deletion time overflows", k.GetKeyId())
	}
	if s.isPrimaryHere(k) && len(k.GetMultiRegion().GetReplicas()) > 0 {
		// As AWS: a primary outlives its replicas; its waiting period
		// starts when RemoveReplica drops the last one.
		return s.updateKey(k, func(k *fsmpb.Key) {
			k.State = pendingReplicaDeletion
			k.PendingWindowDays = days
		})
	}
	return s.updateKey(k, func(k *fsmpb.Key) {
		k.State = pendingDeletion
		k.DeletionTimeUnixNano = deletion
		k.PendingWindowDays = days
	})
}

func (s *state) applyCancelKeyDeletion(op *fsmpb.CancelKeyDeletion) *Result {
	k, r := s.keyIn(op.GetKeyId(), "CancelKeyDeletion", pendingDeletion, pendingReplicaDeletion)
	if r != nil {
		return r
	}
	// AWS leaves a cancelled key disabled: the owner re-enables it on purpose.
	return s.updateKey(k, func(k *fsmpb.Key) {
		k.State = disabled
		k.DeletionTimeUnixNano = 0
		k.PendingWindowDays = 0
	})
}

func (s *state) applyDeleteKey(now int64, op *fsmpb.DeleteKey) *Result {
	k, r := s.keyIn(op.GetKeyId(), "DeleteKey", pendingDeletion)
	if r != nil {
		return r
	}
	if now < k.GetDeletionTimeUnixNano() {
		return reject(ErrInvalidState, "key %s is scheduled for deletion at %s; DeleteKey at %s is too early",
			k.GetKeyId(), formatTime(k.GetDeletionTimeUnixNano()), formatTime(now))
	}
	var orphans []string
	for name, a := range s.aliases.all() {
		if a.GetTargetKeyId() == k.GetKeyId() {
			orphans = append(orphans, name)
		}
	}
	for _, name := range orphans {
		s.aliases.remove(name)
	}
	// A deleted key's grants can never be used again: no RemovedGrant is
	// needed to refuse their tokens.
	s.removeKeyGrants(k.GetKeyId())
	s.removeKey(k.GetKeyId())
	return &Result{Key: k}
}

// keyIn returns the key if it exists and is in one of the allowed states,
// else the rejection naming the action and the states it needs.
func (s *state) keyIn(id, action string, allowed ...fsmpb.KeyState) (*fsmpb.Key, *Result) {
	if id == "" {
		return nil, reject(ErrInvalidArgument, "%s needs a key id", action)
	}
	k, ok := s.keys.get(id)
	if !ok {
		return nil, reject(ErrNotFound, "key %s does not exist", id)
	}
	if !slices.Contains(allowed, k.GetState()) {
		names := make([]string, len(allowed))
		for i, st := range allowed {
			names[i] = stateName(st)
		}
		return nil, reject(ErrInvalidState, "key %s is %s; %s needs %s",
			id, statePhrase(k.GetState()), action, strings.Join(names, " or "))
	}
	return k, nil
}

// updateKey stores a changed clone of k: published keys are shared with
// readers and snapshots without locks or copies, so they are never modified.
func (s *state) updateKey(k *fsmpb.Key, change func(*fsmpb.Key)) *Result {
	c := proto.Clone(k).(*fsmpb.Key)
	change(c)
	s.putKey(c)
	return &Result{Key: c}
}

func (s *state) checkVersion(keyID string, v *fsmpb.KeyVersion) *Result {
	if n := len(v.GetVersionId()); n != versionIDLen {
		return reject(ErrInvalidArgument, "key %s: version id has %d bytes, needs %d", keyID, n, versionIDLen)
	}
	if len(v.GetKeyToken()) == 0 {
		return reject(ErrInvalidArgument, "key %s: version %x has no key token", keyID, v.GetVersionId())
	}
	// A token wrapped under a domain key the region does not have could
	// never be unwrapped: refuse it now rather than fail every Decrypt.
	if !s.hasDomainKey(v.GetDomainKeyId()) {
		return reject(ErrInvalidArgument, "key %s: version %x is wrapped under unknown domain key %q",
			keyID, v.GetVersionId(), v.GetDomainKeyId())
	}
	return nil
}

func checkDescription(keyID, description string) *Result {
	if n := utf8.RuneCountInString(description); n > maxDescriptionChars {
		return reject(ErrInvalidArgument, "key %s: description has %d characters; the limit is %d", keyID, n, maxDescriptionChars)
	}
	return nil
}

func stateName(st fsmpb.KeyState) string {
	switch st {
	case enabled:
		return "Enabled"
	case disabled:
		return "Disabled"
	case pendingDeletion:
		return "PendingDeletion"
	case pendingReplicaDeletion:
		return "PendingReplicaDeletion"
	}
	return st.String()
}

func statePhrase(st fsmpb.KeyState) string {
	switch st {
	case enabled:
		return "enabled"
	case disabled:
		return "disabled"
	case pendingDeletion:
		return "pending deletion"
	case pendingReplicaDeletion:
		return "pending replica deletion"
	}
	return "in state " + st.String()
}

const nanosPerDay = int64(24 * time.Hour)

// addDays returns t plus days, or false if that overflows int64 nanoseconds.
func addDays(t int64, days int32) (int64, bool) {
	d := int64(days) * nanosPerDay
	if t > 0 && d > 0 && t > (1<<63-1)-d {
		return 0, false
	}
	return t + d, true
}

// formatTime renders a command time for messages; UTC, so every node writes
// the same text.
func formatTime(unixNano int64) string {
	return time.Unix(0, unixNano).UTC().Format(time.RFC3339)
}

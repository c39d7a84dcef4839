package fsm

import (
	"bytes"
	"cmp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// MRKPrefix starts the id of every multi-region key; 32 lowercase hex digits
// follow (AWS KMS's format).
const MRKPrefix = "mrk-"

// maxReplicas bounds a multi-region key's replica list: every shared change
// is shipped to each replica and each ack scans the list.
const maxReplicas = 10

const (
	pendingReplicaDeletion = fsmpb.KeyState_KEY_STATE_PENDING_REPLICA_DELETION

	replicaCreating = fsmpb.ReplicaState_REPLICA_STATE_CREATING
	replicaActive   = fsmpb.ReplicaState_REPLICA_STATE_ACTIVE
	replicaDeleting = fsmpb.ReplicaState_REPLICA_STATE_DELETING
)

// IsMRKID reports whether id has the form of a multi-region key id.
func IsMRKID(id string) bool {
	hex, ok := strings.CutPrefix(id, MRKPrefix)
	if !ok || len(hex) != 32 {
		return false
	}
	for _, c := range []byte(hex) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// regionName is "" before InitRegion; no key command succeeds then that
// needs it.
func (s *state) regionName() string { return s.region.GetName() }

// isPrimaryHere reports whether k is a multi-region key whose primary is this
// region.
func (s *state) isPrimaryHere(k *fsmpb.Key) bool {
	mr := k.GetMultiRegion()
	return mr != nil && mr.GetPrimaryRegion() == s.regionName()
}

// checkPrimaryForShared rejects a change of shared properties (rotation) in a
// region that is not the key's primary: only the primary may change them, or
// regions would diverge.
func (s *state) checkPrimaryForShared(k *fsmpb.Key, action string) *Result {
	if mr := k.GetMultiRegion(); mr != nil && !s.isPrimaryHere(k) {
		return reject(ErrInvalidState, "key %s is a replica of a multi-region key; %s is only allowed in its primary region %s",
			k.GetKeyId(), action, mr.GetPrimaryRegion())
	}
	return nil
}

// mrkKey returns the multi-region key with that id, else the rejection.
func (s *state) mrkKey(id, action string) (*fsmpb.Key, *Result) {
	if id == "" {
		return nil, reject(ErrInvalidArgument, "%s needs a key id", action)
	}
	k, ok := s.keys.get(id)
	if !ok {
		return nil, reject(ErrNotFound, "key %s does not exist", id)
	}
	if k.GetMultiRegion() == nil {
		return nil, reject(ErrInvalidState, "key %s is not a multi-region key; %s needs one", id, action)
	}
	return k, nil
}

// primaryKey returns the multi-region key if this region is its primary.
func (s *state) primaryKey(id, action string) (*fsmpb.Key, *Result) {
	k, r := s.mrkKey(id, action)
	if r != nil {
		return nil, r
	}
	if !s.isPrimaryHere(k) {
		return nil, reject(ErrInvalidState, "key %s: %s needs the primary region; this region %s is a replica of %s",
			id, action, s.regionName(), k.GetMultiRegion().GetPrimaryRegion())
	}
	return k, nil
}

// newerTerm reports whether (epoch a, primary pa) supersedes (epoch b,
// primary pb). Two replicas forced into the same epoch while partitioned
// would otherwise each take the other's changes as stale forever; the
// smaller region name wins the tie, on every node alike.
func newerTerm(a uint64, pa string, b uint64, pb string) bool {
	if a != b {
		return a > b
	}
	return pa != pb && pa < pb
}

// bumpShared numbers a change of a primary's shared properties, so that the
// replicator ships it to every replica.
func bumpShared(k *fsmpb.Key) uint64 {
	k.MultiRegion.SharedSeq++
	return k.MultiRegion.SharedSeq
}

// settlePending clears the pending flag of every version each counted
// replica has acked and makes the newest of them current. Replicas being
// deleted do not hold rotations back. A cleared version changes the current
// version, a shared property: the seq moves so replicas learn it. Called on
// a clone that is about to be stored.
func settlePending(k *fsmpb.Key) {
	mr := k.MultiRegion
	minAcked := ^uint64(0)
	for _, r := range mr.Replicas {
		if r.GetState() != replicaDeleting {
			minAcked = min(minAcked, r.GetAckedSeq())
		}
	}
	var newest *fsmpb.KeyVersion
	for _, v := range k.Versions {
		if v.GetPending() && v.GetAddedSeq() <= minAcked {
			v.Pending = false
			if newest == nil || v.GetAddedSeq() >= newest.GetAddedSeq() {
				newest = v
			}
		}
	}
	if newest != nil {
		mr.CurrentVersionId = newest.GetVersionId()
		for _, r := range mr.Replicas {
			if r.GetAckedSeq() == mr.GetSharedSeq() {
				// Caught up until this bump: behind from now on (putKey's
				// markBehind stamps it), not since its older lag.
				r.BehindSinceUnixNano = 0
			}
		}
		bumpShared(k)
	}
}

func hasCountedReplicas(mr *fsmpb.MultiRegion) bool {
	return slices.ContainsFunc(mr.GetReplicas(), func(r *fsmpb.Replica) bool { return r.GetState() != replicaDeleting })
}

func replicaIndex(replicas []*fsmpb.Replica, region string) int {
	return slices.IndexFunc(replicas, func(r *fsmpb.Replica) bool { return r.GetRegion() == region })
}

// checkVersions validates versions a command carries for an existing or new
// multi-region key: each sound, none repeated.
func (s *state) checkVersions(keyID string, versions []*fsmpb.KeyVersion) *Result {
	if len(versions) == 0 {
		return reject(ErrInvalidArgument, "key %s: the command carries no key versions", keyID)
	}
	seen := make(map[string]struct{}, len(versions))
	for _, v := range versions {
		if r := s.checkVersion(keyID, v); r != nil {
			return r
		}
		if _, dup := seen[string(v.GetVersionId())]; dup {
			return reject(ErrInvalidArgument, "key %s: version %x appears twice", keyID, v.GetVersionId())
		}
		seen[string(v.GetVersionId())] = struct{}{}
	}
	return nil
}

// checkReplicaList validates a replica list shipped by a primary.
func checkReplicaList(keyID, primary string, replicas []*fsmpb.Replica) *Result {
	if n := len(replicas); n > maxReplicas {
		return reject(ErrLimitExceeded, "key %s: %d replicas; the limit is %d", keyID, n, maxReplicas)
	}
	for i, r := range replicas {
		switch {
		case r.GetRegion() == "":
			return reject(ErrInvalidArgument, "key %s: replicas[%d] has no region", keyID, i)
		case r.GetRegion() == primary:
			return reject(ErrInvalidArgument, "key %s: the primary region %s is listed as its own replica", keyID, primary)
		case replicaIndex(replicas[:i], r.GetRegion()) >= 0:
			return reject(ErrInvalidArgument, "key %s: replica region %s is listed twice", keyID, r.GetRegion())
		}
	}
	return nil
}

// initMultiRegion makes a key CreateKey is storing a multi-region primary of
// this region. The caller has checked the id.
func (s *state) initMultiRegion(k *fsmpb.Key) {
	v := k.Versions[0]
	k.MultiRegion = &fsmpb.MultiRegion{
		PrimaryRegion:    s.regionName(),
		Epoch:            1,
		SharedSeq:        1,
		CurrentVersionId: v.GetVersionId(),
	}
	v.OriginRegion, v.OriginEpoch, v.AddedSeq = s.regionName(), 1, 1
}

func (s *state) applyAddReplica(op *fsmpb.AddReplica) *Result {
	k, r := s.primaryKey(op.GetKeyId(), "ReplicateKey")
	if r != nil {
		return r
	}
	id, region := k.GetKeyId(), op.GetRegion()
	if r := s.requireState(k, "ReplicateKey", enabled, disabled); r != nil {
		return r
	}
	mr := k.GetMultiRegion()
	switch {
	case region == "":
		return reject(ErrInvalidArgument, "key %s: ReplicateKey needs a ReplicaRegion", id)
	case region == s.regionName():
		return reject(ErrInvalidArgument, "key %s: ReplicaRegion %s is the primary region", id, region)
	case replicaIndex(mr.GetReplicas(), region) >= 0:
		return reject(ErrAlreadyExists, "key %s already has a replica in %s", id, region)
	case len(mr.GetReplicas()) >= maxReplicas:
		return reject(ErrLimitExceeded, "key %s has %d replicas; the limit is %d", id, len(mr.GetReplicas()), maxReplicas)
	case len(op.GetPolicy()) == 0:
		return reject(ErrInvalidArgument, "key %s: ReplicateKey needs the replica's policy", id)
	case len(op.GetTags()) > maxTagsPerKey:
		return reject(ErrLimitExceeded, "key %s: ReplicateKey with %d tags; the limit is %d", id, len(op.GetTags()), maxTagsPerKey)
	}
	if r := checkPolicy(id, op.GetPolicy()); r != nil {
		return r
	}
	if r := checkDescription(id, op.GetDescription()); r != nil {
		return r
	}
	return s.updateKey(k, func(k *fsmpb.Key) {
		k.MultiRegion.Replicas = append(k.MultiRegion.Replicas, &fsmpb.Replica{
			Region: region, State: replicaCreating,
			Policy: op.GetPolicy(), Description: op.GetDescription(), Tags: op.GetTags(),
		})
		// The replica list is shared: every replica shows it.
		bumpShared(k)
	})
}

func (s *state) applyImportReplicaKey(now int64, principal string, op *fsmpb.ImportReplicaKey) *Result {
	k := op.GetKey()
	id := k.GetKeyId()
	mr := k.GetMultiRegion()
	if !IsMRKID(id) {
		return reject(ErrInvalidArgument, "ImportReplicaKey: key id %q is not %s followed by 32 hex digits", id, MRKPrefix)
	}
	if mr == nil {
		return reject(ErrInvalidArgument, "key %s: ImportReplicaKey needs the multi-region record", id)
	}
	if existing, ok := s.keys.get(id); ok {
		if existing.GetMultiRegion() == nil {
			return reject(ErrAlreadyExists, "key %s already exists and is not a multi-region key", id)
		}
		// A retried import: the key is here, so it is one more shared change.
		return s.applySharedChange(now, &fsmpb.ApplySharedChange{
			KeyId: id, PrimaryRegion: mr.GetPrimaryRegion(), Epoch: mr.GetEpoch(), Seq: mr.GetAppliedSeq(),
			Versions: k.GetVersions(), CurrentVersionId: mr.GetCurrentVersionId(),
			RotationEnabled: k.GetRotationEnabled(), RotationPeriodDays: k.GetRotationPeriodDays(),
			NextRotationTimeUnixNano: k.GetNextRotationTimeUnixNano(), Replicas: mr.GetReplicas(),
		})
	}
	if r := s.checkChangeHeader(id, mr.GetPrimaryRegion(), mr.GetEpoch(), mr.GetAppliedSeq()); r != nil {
		return r
	}
	if r := checkKeyAttributes("ImportReplicaKey", k); r != nil {
		return r
	}
	if r := s.checkVersions(id, k.GetVersions()); r != nil {
		return r
	}
	if r := checkCurrent(id, mr.GetCurrentVersionId(), k.GetVersions()); r != nil {
		return r
	}
	if r := checkRotationSettings(id, k.GetRotationEnabled(), k.GetRotationPeriodDays(), k.GetNextRotationTimeUnixNano()); r != nil {
		return r
	}
	if r := checkReplicaList(id, mr.GetPrimaryRegion(), mr.GetReplicas()); r != nil {
		return r
	}

	k.State = enabled
	k.CreationTimeUnixNano = now
	k.DeletionTimeUnixNano = 0
	k.PendingWindowDays = 0
	k.Creator = principal
	mr.SharedSeq = 0
	mr.AppliedTimeUnixNano = now
	for _, v := range k.Versions {
		v.Unshipped = false
	}
	s.putKey(k)
	return &Result{Key: k}
}

// checkChangeHeader validates where a shipped change says it comes from.
func (s *state) checkChangeHeader(id, primary string, epoch, seq uint64) *Result {
	switch {
	case s.region == nil:
		return reject(ErrInvalidState, "key %s: region is not initialised; shared changes need InitRegion first", id)
	case primary == "":
		return reject(ErrInvalidArgument, "key %s: the shared change names no primary region", id)
	case primary == s.regionName():
		return reject(ErrInvalidArgument, "key %s: the shared change names this region %s as its primary; only other regions ship changes here",
			id, primary)
	case epoch == 0:
		return reject(ErrInvalidArgument, "key %s: the shared change has epoch 0; epochs start at 1", id)
	case seq == 0:
		return reject(ErrInvalidArgument, "key %s: the shared change has seq 0; seqs start at 1", id)
	}
	return nil
}

func checkCurrent(id string, current []byte, versions []*fsmpb.KeyVersion) *Result {
	for _, v := range versions {
		if bytes.Equal(v.GetVersionId(), current) {
			if v.GetPending() {
				return reject(ErrInvalidArgument, "key %s: current version %x is pending", id, current)
			}
			return nil
		}
	}
	return reject(ErrInvalidArgument, "key %s: current version %x is not among the shipped versions", id, current)
}

func checkRotationSettings(id string, on bool, days int32, next int64) *Result {
	if !on {
		if days != 0 && (days < minRotationPeriodDays || days > maxRotationPeriodDays) || next != 0 {
			return reject(ErrInvalidArgument, "key %s: rotation disabled with period %d days and next rotation %d", id, days, next)
		}
		return nil
	}
	if days < minRotationPeriodDays || days > maxRotationPeriodDays {
		return reject(ErrInvalidArgument, "key %s: rotation period of %d days is outside %d..%d",
			id, days, minRotationPeriodDays, maxRotationPeriodDays)
	}
	if next <= 0 {
		return reject(ErrInvalidArgument, "key %s: rotation enabled without a next rotation time", id)
	}
	return nil
}

// applySharedChange applies a primary's shipped state. Every shipment
// carries all versions, so a receiver needs no earlier shipment to apply a
// later one: duplicates and reordering are harmless.
//
//   - Versions are merged by id and never removed.
//   - Everything else (current version, rotation, replica list, epoch,
//     primary) is taken only from a change newer than the key's: a newer
//     term, or the same term and a higher seq. An older change only merges.
//   - A newer term demotes this region if it was primary.
func (s *state) applySharedChange(now int64, op *fsmpb.ApplySharedChange) *Result {
	k, r := s.mrkKey(op.GetKeyId(), "a shared change")
	if r != nil {
		return r
	}
	id := k.GetKeyId()
	if r := s.checkChangeHeader(id, op.GetPrimaryRegion(), op.GetEpoch(), op.GetSeq()); r != nil {
		return r
	}
	if r := s.checkVersions(id, op.GetVersions()); r != nil {
		return r
	}
	if r := checkCurrent(id, op.GetCurrentVersionId(), op.GetVersions()); r != nil {
		return r
	}
	if r := checkRotationSettings(id, op.GetRotationEnabled(), op.GetRotationPeriodDays(), op.GetNextRotationTimeUnixNano()); r != nil {
		return r
	}
	if r := checkReplicaList(id, op.GetPrimaryRegion(), op.GetReplicas()); r != nil {
		return r
	}
	mr := k.GetMultiRegion()
	newTerm := newerTerm(op.GetEpoch(), op.GetPrimaryRegion(), mr.GetEpoch(), mr.GetPrimaryRegion())
	sameTerm := op.GetEpoch() == mr.GetEpoch() && op.GetPrimaryRegion() == mr.GetPrimaryRegion()
	if newTerm || sameTerm && op.GetSeq() > mr.GetAppliedSeq() {
		return s.updateKey(k, func(k *fsmpb.Key) { s.adoptChange(now, k, op) })
	}
	// Stale or older-term change: only versions this region lacks.
	olderTerm := !sameTerm
	return s.mergeVersions(k, op.GetVersions(), olderTerm)
}

// adoptChange makes k (a clone) follow op, a change newer than it holds.
func (s *state) adoptChange(now int64, k *fsmpb.Key, op *fsmpb.ApplySharedChange) {
	mr := k.MultiRegion
	if mr.GetPrimaryRegion() == s.regionName() {
		s.demote(now, k)
	}
	byID := make(map[string]*fsmpb.KeyVersion, len(op.GetVersions()))
	for _, v := range op.GetVersions() {
		byID[string(v.GetVersionId())] = v
	}
	for _, v := range k.Versions {
		shipped, ok := byID[string(v.GetVersionId())]
		// Absent from the primary's full set: it must be shipped there.
		v.Unshipped = !ok
		if ok {
			v.Pending = shipped.GetPending()
			delete(byID, string(v.GetVersionId()))
		}
	}
	for _, v := range op.GetVersions() {
		if _, missing := byID[string(v.GetVersionId())]; missing {
			c := proto.Clone(v).(*fsmpb.KeyVersion)
			c.Unshipped = false
			k.Versions = append(k.Versions, c)
		}
	}
	mr.PrimaryRegion = op.GetPrimaryRegion()
	mr.Epoch = op.GetEpoch()
	mr.SharedSeq = 0
	mr.AppliedSeq = op.GetSeq()
	mr.AppliedTimeUnixNano = now
	mr.CurrentVersionId = op.GetCurrentVersionId()
	mr.Replicas = cloneReplicas(op.GetReplicas())
	k.RotationEnabled = op.GetRotationEnabled()
	k.RotationPeriodDays = op.GetRotationPeriodDays()
	k.NextRotationTimeUnixNano = op.GetNextRotationTimeUnixNano()
}

// demote turns k (a clone), a primary here, into a replica. A primary
// scheduled for deletion keeps that intent as a replica's ordinary
// deletion, whose waiting period starts now.
func (s *state) demote(now int64, k *fsmpb.Key) {
	if k.State == pendingReplicaDeletion {
		k.State = pendingDeletion
		k.DeletionTimeUnixNano, _ = addDays(now, k.PendingWindowDays)
	}
	for _, v := range k.Versions {
		// The new primary may lack any of them (it was forced while this
		// region was cut off, or had not acked them yet): ship them all;
		// its next change clears what it holds.
		v.Unshipped = true
	}
	k.MultiRegion.SharedSeq = 0
}

func cloneReplicas(in []*fsmpb.Replica) []*fsmpb.Replica {
	out := make([]*fsmpb.Replica, len(in))
	for i, r := range in {
		out[i] = proto.Clone(r).(*fsmpb.Replica)
	}
	return out
}

// mergeVersions adds the versions k lacks. At the primary they are shared
// from now on (the seq moves, so every replica receives them) but never
// current: its own current version stays. Elsewhere they are marked to be
// shipped to the primary when the sender's term is older than the key's,
// since the primary may never have seen them.
func (s *state) mergeVersions(k *fsmpb.Key, versions []*fsmpb.KeyVersion, fromOlderTerm bool) *Result {
	var missing []*fsmpb.KeyVersion
	for _, v := range versions {
		if _, ok := FindVersion(k, v.GetVersionId()); !ok {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return &Result{Key: k}
	}
	primary := s.isPrimaryHere(k)
	return s.updateKey(k, func(k *fsmpb.Key) {
		var seq uint64
		if primary {
			seq = bumpShared(k)
		}
		for _, v := range missing {
			c := proto.Clone(v).(*fsmpb.KeyVersion)
			c.Pending = false
			c.Unshipped = !primary && fromOlderTerm
			if primary {
				c.AddedSeq = seq
			}
			k.Versions = append(k.Versions, c)
		}
	})
}

func (s *state) applyMergeKeyVersions(op *fsmpb.MergeKeyVersions) *Result {
	k, r := s.mrkKey(op.GetKeyId(), "MergeKeyVersions")
	if r != nil {
		return r
	}
	if r := s.checkVersions(k.GetKeyId(), op.GetVersions()); r != nil {
		return r
	}
	return s.mergeVersions(k, op.GetVersions(), true)
}

// applyAckReplica advances a replica's cursor. Acks may arrive late, twice
// or out of order (the replicator retries, and a new leader resends): the
// cursor only moves forward, and an ack from another epoch is ignored.
func (s *state) applyAckReplica(now int64, op *fsmpb.AckReplica) *Result {
	k, r := s.mrkKey(op.GetKeyId(), "AckReplica")
	if r != nil {
		return r
	}
	id, mr := k.GetKeyId(), k.GetMultiRegion()
	if op.GetEpoch() != mr.GetEpoch() {
		return &Result{Key: k}
	}
	if !s.isPrimaryHere(k) {
		return reject(ErrInvalidState, "key %s: AckReplica needs the primary region; this region %s is a replica of %s",
			id, s.regionName(), mr.GetPrimaryRegion())
	}
	i := replicaIndex(mr.GetReplicas(), op.GetRegion())
	if i < 0 {
		return reject(ErrNotFound, "key %s has no replica in region %q", id, op.GetRegion())
	}
	if op.GetSeq() > mr.GetSharedSeq() {
		return reject(ErrInvalidArgument, "key %s: AckReplica seq %d is above the key's shared seq %d",
			id, op.GetSeq(), mr.GetSharedSeq())
	}
	old := mr.GetReplicas()[i]
	state := old.GetState()
	switch {
	case op.GetDeleting():
		state = replicaDeleting
	case state == replicaDeleting || state == replicaCreating && op.GetSeq() > 0:
		state = replicaActive
	}
	advanced := op.GetSeq() > old.GetAckedSeq()
	if !advanced && state == old.GetState() && op.GetLastError() == old.GetLastError() {
		return &Result{Key: k}
	}
	deletionChanged := (state == replicaDeleting) != (old.GetState() == replicaDeleting)
	return s.updateKey(k, func(k *fsmpb.Key) {
		rep := k.MultiRegion.Replicas[i]
		if advanced {
			rep.AckedSeq, rep.AckedTimeUnixNano = op.GetSeq(), now
		}
		if deletionChanged {
			// The replica list is shared: the regions learn the new state
			// (and the replica stops reporting it).
			bumpShared(k)
		}
		rep.State, rep.LastError = state, op.GetLastError()
		if state != replicaCreating {
			// The replica region holds its own copies now.
			rep.Policy, rep.Description, rep.Tags = nil, "", nil
		}
		settlePending(k)
	})
}

func (s *state) applyRemoveReplica(now int64, op *fsmpb.RemoveReplica) *Result {
	k, r := s.primaryKey(op.GetKeyId(), "RemoveReplica")
	if r != nil {
		return r
	}
	i := replicaIndex(k.GetMultiRegion().GetReplicas(), op.GetRegion())
	if i < 0 {
		// Already removed: a repeated confirmation changes nothing.
		return &Result{Key: k}
	}
	var deletion int64
	last := len(k.GetMultiRegion().GetReplicas()) == 1
	if last && k.GetState() == pendingReplicaDeletion {
		var ok bool
		if deletion, ok = addDays(now, k.GetPendingWindowDays()); !ok {
			return reject(ErrInvalidArgument, "key %s: deletion time overflows", k.GetKeyId())
		}
	}
	return s.updateKey(k, func(k *fsmpb.Key) {
		mr := k.MultiRegion
		mr.Replicas = slices.Delete(mr.Replicas, i, i+1)
		bumpShared(k)
		settlePending(k)
		if last && k.State == pendingReplicaDeletion {
			// As AWS: the waiting period starts once the last replica is gone.
			k.State = pendingDeletion
			k.DeletionTimeUnixNano = deletion
		}
	})
}

// applyUpdatePrimaryRegion moves the primary. Applied at new_primary it
// promotes this region; elsewhere it records the new primary (demoting this
// region if it was primary). Either way the epoch only rises, which fences
// whichever region still believes it is primary.
func (s *state) applyUpdatePrimaryRegion(now int64, op *fsmpb.UpdatePrimaryRegion) *Result {
	k, r := s.mrkKey(op.GetKeyId(), "UpdatePrimaryRegion")
	if r != nil {
		return r
	}
	id, mr, here, target := k.GetKeyId(), k.GetMultiRegion(), s.regionName(), op.GetNewPrimary()
	switch {
	case target == "":
		return reject(ErrInvalidArgument, "key %s: UpdatePrimaryRegion needs a PrimaryRegion", id)
	case op.GetEpoch() <= mr.GetEpoch():
		return reject(ErrInvalidState, "key %s: UpdatePrimaryRegion epoch %d is not above the key's epoch %d",
			id, op.GetEpoch(), mr.GetEpoch())
	case target == mr.GetPrimaryRegion():
		return reject(ErrInvalidArgument, "key %s: %s is already the primary region", id, target)
	}
	wasPrimary := mr.GetPrimaryRegion() == here
	if target != here && wasPrimary {
		if r := s.requireState(k, "UpdatePrimaryRegion", enabled, disabled); r != nil {
			return r
		}
		i := replicaIndex(mr.GetReplicas(), target)
		if i < 0 {
			return reject(ErrInvalidArgument, "key %s has no replica in %s; replicate it there first", id, target)
		}
		// As AWS requires an enabled replica: one still being created holds
		// no key to promote, one being deleted is going away.
		if st := mr.GetReplicas()[i].GetState(); st != replicaActive {
			return reject(ErrInvalidState, "key %s: the replica in %s is %s; a planned UpdatePrimaryRegion needs an ACTIVE one",
				id, target, strings.TrimPrefix(st.String(), "REPLICA_STATE_"))
		}
	}
	if target == here {
		if r := s.requireState(k, "UpdatePrimaryRegion", enabled, disabled); r != nil {
			return r
		}
	}
	oldPrimary := mr.GetPrimaryRegion()
	return s.updateKey(k, func(k *fsmpb.Key) {
		mr := k.MultiRegion
		if wasPrimary {
			s.demote(now, k)
		}
		// The new configuration: the target leaves the replica list, the
		// old primary joins it; cursors restart with the epoch.
		var replicas []*fsmpb.Replica
		for _, rep := range mr.Replicas {
			if rep.GetRegion() != target {
				replicas = append(replicas, &fsmpb.Replica{Region: rep.GetRegion(), State: rep.GetState()})
			}
		}
		if replicaIndex(replicas, oldPrimary) < 0 {
			replicas = append(replicas, &fsmpb.Replica{Region: oldPrimary, State: replicaActive})
		}
		slices.SortFunc(replicas, func(a, b *fsmpb.Replica) int { return cmp.Compare(a.GetRegion(), b.GetRegion()) })
		mr.Replicas = replicas
		mr.PrimaryRegion = target
		mr.Epoch = op.GetEpoch()
		mr.AppliedSeq = 0
		if target != here {
			return
		}
		// Promoted: seqs restart at 1 in the new epoch, so every replica
		// (acked 0) receives the full state, and versions still pending are
		// released once all of them ack it.
		mr.SharedSeq = 1
		mr.AppliedTimeUnixNano = 0
		for _, v := range k.Versions {
			v.Unshipped = false
			if v.Pending {
				v.AddedSeq = 1
			}
		}
		if !hasCountedReplicas(mr) {
			settlePending(k)
		}
	})
}

// requireState is keyIn's state check for a key already looked up.
func (s *state) requireState(k *fsmpb.Key, action string, allowed ...fsmpb.KeyState) *Result {
	_, r := s.keyIn(k.GetKeyId(), action, allowed...)
	return r
}

// MultiRegionKeysToShip returns, sorted by id, the multi-region keys with
// work for the replicator in this region: primaries here with a replica
// whose cursor is behind the shared seq, and keys holding versions to ship
// to their primary. With region != "" only the keys with work for that
// region. It reads an index Apply maintains, so it costs O(m log m) for m
// keys with work, not a scan of every key; the keys are shared and must not
// be modified.
func (f *FSM) MultiRegionKeysToShip(region string) []*fsmpb.Key {
	f.mu.RLock()
	defer f.mu.RUnlock()
	here := f.st.regionName()
	var out []*fsmpb.Key
	for _, k := range f.st.toShip {
		if region == "" || slices.Contains(ShipTargets(k, here), region) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b *fsmpb.Key) int { return cmp.Compare(a.GetKeyId(), b.GetKeyId()) })
	return out
}

// ShipTargets returns the regions k has to be shipped to from region here:
// at its primary the replicas whose acked seq is behind or that are pending
// deletion, elsewhere the primary if k holds unshipped versions.
func ShipTargets(k *fsmpb.Key, here string) []string {
	mr := k.GetMultiRegion()
	if mr == nil {
		return nil
	}
	var targets []string
	if mr.GetPrimaryRegion() == here {
		for _, r := range mr.GetReplicas() {
			// A replica pending deletion stays listed though caught up: the
			// replicator probes it to learn when its key is gone.
			if r.GetAckedSeq() < mr.GetSharedSeq() || r.GetState() == replicaDeleting {
				targets = append(targets, r.GetRegion())
			}
		}
		return targets
	}
	if slices.ContainsFunc(k.GetVersions(), (*fsmpb.KeyVersion).GetUnshipped) || deletionUnreported(k, here) {
		targets = append(targets, mr.GetPrimaryRegion())
	}
	return targets
}

// deletionUnreported reports whether replica k in region here is pending
// deletion and the primary's list (as last shipped) does not say so, or
// the reverse after a cancellation: the replicator then tells the primary,
// whose rotations a replica being deleted no longer holds back.
func deletionUnreported(k *fsmpb.Key, here string) bool {
	replicas := k.GetMultiRegion().GetReplicas()
	i := replicaIndex(replicas, here)
	if i < 0 {
		return false
	}
	return (k.GetState() == pendingDeletion) != (replicas[i].GetState() == replicaDeleting)
}

// putKey stores a key and keeps the replicator's index current; for a
// single-region key the index costs one nil check.
func (s *state) putKey(k *fsmpb.Key) {
	if s.isPrimaryHere(k) {
		markBehind(k.MultiRegion, s.now)
	}
	s.keys.put(k.GetKeyId(), k)
	if k.GetMultiRegion() != nil || s.toShip[k.GetKeyId()] != nil {
		s.indexShip(k)
	}
}

// markBehind keeps each replica's behind_since: the command time at which
// its cursor fell behind the shared seq, 0 while caught up. k is a key about
// to be stored, not yet visible to readers.
func markBehind(mr *fsmpb.MultiRegion, now int64) {
	for _, r := range mr.GetReplicas() {
		switch behind := r.GetAckedSeq() < mr.GetSharedSeq(); {
		case !behind:
			r.BehindSinceUnixNano = 0
		case r.GetBehindSinceUnixNano() == 0:
			r.BehindSinceUnixNano = now
		}
	}
}

func (s *state) removeKey(id string) {
	s.keys.remove(id)
	delete(s.toShip, id)
}

func (s *state) indexShip(k *fsmpb.Key) {
	if len(ShipTargets(k, s.regionName())) > 0 {
		s.toShip[k.GetKeyId()] = k
	} else {
		delete(s.toShip, k.GetKeyId())
	}
}

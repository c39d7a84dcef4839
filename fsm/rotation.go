package fsm

import (
	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Rotation periods AWS KMS accepts.
const (
	minRotationPeriodDays = 90
	maxRotationPeriodDays = 2560
)

// Rotation types of a KeyVersion after the first.
const (
	RotationAutomatic = "AUTOMATIC"
	RotationOnDemand  = "ON_DEMAND"
)

func (s *state) applySetKeyRotation(now int64, op *fsmpb.SetKeyRotation) *Result {
	if !op.GetEnabled() {
		k, r := s.keyIn(op.GetKeyId(), "DisableKeyRotation", enabled, disabled)
		if r != nil {
			return r
		}
		if r := s.checkPrimaryForShared(k, "DisableKeyRotation"); r != nil {
			return r
		}
		if !k.GetRotationEnabled() {
			return &Result{Key: k}
		}
		return s.updateKey(k, func(k *fsmpb.Key) {
			k.RotationEnabled = false
			k.NextRotationTimeUnixNano = 0
			if k.MultiRegion != nil {
				bumpShared(k)
			}
		})
	}

	days := op.GetRotationPeriodDays()
	if days < minRotationPeriodDays || days > maxRotationPeriodDays {
		return reject(ErrInvalidArgument, "key %s: rotation period of %d days is outside %d..%d",
			op.GetKeyId(), days, minRotationPeriodDays, maxRotationPeriodDays)
	}
	k, r := s.keyIn(op.GetKeyId(), "EnableKeyRotation", enabled)
	if r != nil {
		return r
	}
	if r := s.checkPrimaryForShared(k, "EnableKeyRotation"); r != nil {
		return r
	}
	next, ok := addDays(now, days)
	if !ok {
		return reject(ErrInvalidArgument, "key %s: next rotation time overflows", k.GetKeyId())
	}
	return s.updateKey(k, func(k *fsmpb.Key) {
		k.RotationEnabled = true
		k.RotationPeriodDays = days
		k.NextRotationTimeUnixNano = next
		if k.MultiRegion != nil {
			bumpShared(k)
		}
	})
}

func (s *state) applyRotateKey(now int64, op *fsmpb.RotateKey) *Result {
	v := op.GetVersion()
	if v == nil {
		return reject(ErrInvalidArgument, "key %s: RotateKey needs a version", op.GetKeyId())
	}
	rotationType := v.GetRotationType()
	if rotationType != RotationAutomatic && rotationType != RotationOnDemand {
		return reject(ErrInvalidArgument, "key %s: rotation type %q is neither %s nor %s",
			op.GetKeyId(), rotationType, RotationAutomatic, RotationOnDemand)
	}
	action := "RotateKeyOnDemand"
	if rotationType == RotationAutomatic {
		action = "automatic rotation"
	}
	k, r := s.keyIn(op.GetKeyId(), action, enabled)
	if r != nil {
		return r
	}
	if r := s.checkPrimaryForShared(k, action); r != nil {
		return r
	}
	if r := s.checkVersion(k.GetKeyId(), v); r != nil {
		return r
	}
	if _, dup := FindVersion(k, v.GetVersionId()); dup {
		return reject(ErrAlreadyExists, "key %s already has version %x", k.GetKeyId(), v.GetVersionId())
	}
	next := k.GetNextRotationTimeUnixNano()
	if rotationType == RotationAutomatic {
		// The leader proposes automatic rotations from KeysDue; checking
		// again here makes a duplicate or stale proposal (rotation disabled
		// meanwhile, or already rotated) a rejection instead of an extra
		// version.
		if !k.GetRotationEnabled() {
			return reject(ErrInvalidState, "key %s has automatic rotation disabled", k.GetKeyId())
		}
		if now < next {
			return reject(ErrInvalidState, "key %s is not due for automatic rotation until %s", k.GetKeyId(), formatTime(next))
		}
		var ok bool
		if next, ok = addDays(now, k.GetRotationPeriodDays()); !ok {
			return reject(ErrInvalidArgument, "key %s: next rotation time overflows", k.GetKeyId())
		}
	}
	v.CreationTimeUnixNano = now
	v.Pending, v.Unshipped = false, false
	return s.updateKey(k, func(k *fsmpb.Key) {
		k.Versions = append(k.Versions, v)
		k.NextRotationTimeUnixNano = next
		if mr := k.MultiRegion; mr != nil {
			v.OriginRegion, v.OriginEpoch, v.AddedSeq = mr.PrimaryRegion, mr.Epoch, bumpShared(k)
			// No region may encrypt under a version another region
			// cannot decrypt: it stays pending until every replica has it.
			if hasCountedReplicas(mr) {
				v.Pending = true
			} else {
				mr.CurrentVersionId = v.VersionId
			}
		}
	})
}

// KeysDue returns, sorted by id, the enabled keys whose automatic rotation is
// due at now and the keys whose deletion waiting period has ended. A
// multi-region replica is never due for rotation: its primary rotates it. The leader
// proposes a RotateKey or DeleteKey for each; Apply checks the time again.
func (f *FSM) KeysDue(nowUnixNano int64) (rotate []string, delete []string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for id, k := range f.st.keys.all() {
		switch k.GetState() {
		case enabled:
			if k.GetRotationEnabled() && k.GetNextRotationTimeUnixNano() <= nowUnixNano &&
				(k.GetMultiRegion() == nil || f.st.isPrimaryHere(k)) {
				rotate = append(rotate, id)
			}
		case pendingDeletion:
			if k.GetDeletionTimeUnixNano() <= nowUnixNano {
				delete = append(delete, id)
			}
		}
	}
	return rotate, delete
}

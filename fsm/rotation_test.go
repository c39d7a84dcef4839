package fsm

import (
	"bytes"
	"slices"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func TestSetKeyRotation(t *testing.T) {
	enableRotation := func(h *harness) {
		h.mustApply(wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 365}))
	}
	runApplyCases(t, []applyCase{
		{
			name: "enable",
			cmd:  wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 90}),
			check: func(t *testing.T, h *harness, res *Result) {
				k := h.key(keyEnabled)
				if !k.GetRotationEnabled() || k.GetRotationPeriodDays() != 90 || k.GetNextRotationTimeUnixNano() != t0+hour+90*day {
					t.Errorf("key %v", k)
				}
			},
		},
		{
			name:  "enable again with a new period restarts the schedule",
			setup: enableRotation,
			cmd:   wrap(t0+day, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 2560}),
			check: func(t *testing.T, h *harness, res *Result) {
				if k := h.key(keyEnabled); k.GetNextRotationTimeUnixNano() != t0+day+2560*day {
					t.Errorf("next rotation %d", k.GetNextRotationTimeUnixNano())
				}
			},
		},
		{
			name:  "disable",
			setup: enableRotation,
			cmd:   wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyEnabled}),
			check: func(t *testing.T, h *harness, res *Result) {
				if k := h.key(keyEnabled); k.GetRotationEnabled() || k.GetNextRotationTimeUnixNano() != 0 {
					t.Errorf("key %v", k)
				}
			},
		},
		{
			name: "disable on a disabled key",
			setup: func(h *harness) {
				enableRotation(h)
				h.mustApply(wrap(t0, &fsmpb.SetKeyEnabled{KeyId: keyEnabled}))
			},
			cmd: wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyEnabled}),
			check: func(t *testing.T, h *harness, res *Result) {
				if h.key(keyEnabled).GetRotationEnabled() {
					t.Error("rotation still enabled")
				}
			},
		},
		{
			name:    "period too short",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 89}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{keyEnabled, "rotation period of 89 days is outside 90..2560"},
		},
		{
			name:    "period too long",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 2561}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"2561 days"},
		},
		{
			name:    "enable on a disabled key",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyDisabled, Enabled: true, RotationPeriodDays: 365}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyDisabled + " is disabled; EnableKeyRotation needs Enabled"},
		},
		{
			name:    "enable on a key pending deletion",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyPending, Enabled: true, RotationPeriodDays: 365}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"is pending deletion; EnableKeyRotation needs Enabled"},
		},
		{
			name:    "disable on a key pending deletion",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyPending}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"DisableKeyRotation needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyMissing, Enabled: true, RotationPeriodDays: 365}),
			wantErr: ErrNotFound,
		},
	})
}

func TestRotateKey(t *testing.T) {
	rotateAt := func(at int64, id string, v *fsmpb.KeyVersion) *fsmpb.Command {
		return wrap(at, &fsmpb.RotateKey{KeyId: id, Version: v})
	}
	enableRotation := func(h *harness) {
		h.mustApply(wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 365}))
	}
	runApplyCases(t, []applyCase{
		{
			name:  "on demand keeps the schedule",
			setup: enableRotation,
			cmd:   rotateAt(t0+day, keyEnabled, newVersion(2, RotationOnDemand)),
			check: func(t *testing.T, h *harness, res *Result) {
				k := h.key(keyEnabled)
				cur := CurrentVersion(k)
				if len(k.GetVersions()) != 2 || !bytes.Equal(cur.GetVersionId(), versionID(2)) || cur.GetCreationTimeUnixNano() != t0+day {
					t.Errorf("versions %v", k.GetVersions())
				}
				if k.GetNextRotationTimeUnixNano() != t0+365*day {
					t.Errorf("next rotation moved to %d", k.GetNextRotationTimeUnixNano())
				}
			},
		},
		{
			name:  "automatic when due moves the schedule",
			setup: enableRotation,
			cmd:   rotateAt(t0+366*day, keyEnabled, newVersion(2, RotationAutomatic)),
			check: func(t *testing.T, h *harness, res *Result) {
				k := h.key(keyEnabled)
				if CurrentVersion(k).GetRotationType() != RotationAutomatic || k.GetNextRotationTimeUnixNano() != t0+(366+365)*day {
					t.Errorf("key %v", k)
				}
			},
		},
		{
			name:    "automatic before it is due",
			setup:   enableRotation,
			cmd:     rotateAt(t0+364*day, keyEnabled, newVersion(2, RotationAutomatic)),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyEnabled + " is not due for automatic rotation until 2027-01-01T00:00:00Z"},
		},
		{
			name:    "automatic with rotation disabled",
			cmd:     rotateAt(t0+day, keyEnabled, newVersion(2, RotationAutomatic)),
			wantErr: ErrInvalidState,
			wantMsg: []string{"automatic rotation disabled"},
		},
		{
			name:    "disabled key",
			cmd:     rotateAt(t0+day, keyDisabled, newVersion(2, RotationOnDemand)),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyDisabled + " is disabled; RotateKeyOnDemand needs Enabled"},
		},
		{
			name:    "pending deletion",
			cmd:     rotateAt(t0+day, keyPending, newVersion(2, RotationAutomatic)),
			wantErr: ErrInvalidState,
			wantMsg: []string{"is pending deletion; automatic rotation needs Enabled"},
		},
		{
			name:    "version id of the wrong size",
			cmd:     rotateAt(t0+day, keyEnabled, &fsmpb.KeyVersion{VersionId: make([]byte, 17), KeyToken: []byte("t"), DomainKeyId: dk1, RotationType: RotationOnDemand}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"version id has 17 bytes, needs 16"},
		},
		{
			name:    "existing version id",
			cmd:     rotateAt(t0+day, keyEnabled, newVersion(1, RotationOnDemand)),
			wantErr: ErrAlreadyExists,
			wantMsg: []string{"key " + keyEnabled + " already has version 01010101010101010101010101010101"},
		},
		{
			name:    "unknown rotation type",
			cmd:     rotateAt(t0+day, keyEnabled, newVersion(2, "")),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{`rotation type "" is neither AUTOMATIC nor ON_DEMAND`},
		},
		{
			name: "unknown domain key",
			cmd: rotateAt(t0+day, keyEnabled, func() *fsmpb.KeyVersion {
				v := newVersion(2, RotationOnDemand)
				v.DomainKeyId = "dk-retired-long-ago"
				return v
			}()),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"unknown domain key"},
		},
		{
			name:    "no version",
			cmd:     wrap(t0+day, &fsmpb.RotateKey{KeyId: keyEnabled}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"RotateKey needs a version"},
		},
		{
			name:    "missing key",
			cmd:     rotateAt(t0+day, keyMissing, newVersion(2, RotationOnDemand)),
			wantErr: ErrNotFound,
		},
	})
}

func TestRotateKeyAutomaticIsNotRepeated(t *testing.T) {
	h := newHarness(t)
	h.mustApply(wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 90}))
	due := t0 + 90*day
	h.mustApply(wrap(due, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(2, RotationAutomatic)}))
	// A second proposal from the same KeysDue round (say, after a leader
	// change) must not add another version.
	res := h.apply(wrap(due+1, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(3, RotationAutomatic)}))
	checkRejection(t, res, ErrInvalidState, "not due")
	if n := len(h.key(keyEnabled).GetVersions()); n != 2 {
		t.Errorf("%d versions, want 2", n)
	}
}

func TestRotateKeyLeavesOldVersionsAndSnapshotsAlone(t *testing.T) {
	h := newHarness(t)
	before := h.key(keyEnabled)
	h.mustApply(wrap(t0+day, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(2, RotationOnDemand)}))
	if len(before.GetVersions()) != 1 {
		t.Fatalf("the published key was modified: %d versions", len(before.GetVersions()))
	}
	after := h.key(keyEnabled)
	if _, ok := FindVersion(after, versionID(1)); !ok {
		t.Error("first version lost")
	}
	if _, ok := FindVersion(after, versionID(9)); ok {
		t.Error("found a version that does not exist")
	}
}

func TestKeysDue(t *testing.T) {
	h := newHarness(t) // keyPending is due for deletion at t0+7d
	h.mustApply(wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 90}))
	h.mustApply(wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyHMAC, Enabled: true, RotationPeriodDays: 100}))

	check := func(now int64, wantRotate, wantDelete []string) {
		t.Helper()
		rotate, del := h.f.KeysDue(now)
		if !slices.Equal(rotate, wantRotate) || !slices.Equal(del, wantDelete) {
			t.Errorf("KeysDue(t0+%dd) = %v, %v; want %v, %v", (now-t0)/day, rotate, del, wantRotate, wantDelete)
		}
	}
	check(t0, nil, nil)
	check(t0+7*day, nil, []string{keyPending})
	check(t0+100*day, []string{keyEnabled, keyHMAC}, []string{keyPending})

	// Neither a disabled key nor one pending deletion rotates.
	h.mustApply(wrap(t0+day, &fsmpb.SetKeyEnabled{KeyId: keyHMAC}))
	h.mustApply(wrap(t0+day, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 30}))
	check(t0+100*day, nil, []string{keyEnabled, keyPending})
}

func TestVersionHelpersOnEmptyKey(t *testing.T) {
	if CurrentVersion(nil) != nil || CurrentVersion(&fsmpb.Key{}) != nil {
		t.Error("CurrentVersion of a key without versions")
	}
	if _, ok := FindVersion(nil, versionID(1)); ok {
		t.Error("FindVersion on nil key")
	}
}

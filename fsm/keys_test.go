package fsm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

const keyNew = "1234abcd-0000-0000-0000-000000000099"

func TestCreateKey(t *testing.T) {
	withKey := func(change func(k *fsmpb.Key)) *fsmpb.Command {
		k := newKey(keyNew)
		change(k)
		return wrap(t0+hour, &fsmpb.CreateKey{Key: k})
	}
	manyTags := map[string]string{}
	for i := range maxTagsPerKey + 1 {
		manyTags[fmt.Sprintf("tag-%02d", i)] = "v"
	}
	runApplyCases(t, []applyCase{
		{
			name: "creates an enabled key owning its lifecycle fields",
			cmd: func() *fsmpb.Command {
				c := withKey(func(k *fsmpb.Key) {
					// Whatever the proposer claims, a new key starts enabled and unscheduled.
					k.State = disabled
					k.DeletionTimeUnixNano = 5
					k.RotationEnabled = true
					k.NextRotationTimeUnixNano = 7
					k.Tags = map[string]string{"team": "payments"}
				})
				c.Principal = "spiffe://eu-1/app"
				return c
			}(),
			check: func(t *testing.T, h *harness, res *Result) {
				k := h.key(keyNew)
				if res.Key != k {
					t.Errorf("Result.Key is not the stored key")
				}
				if k.GetState() != enabled || k.GetCreationTimeUnixNano() != t0+hour || k.GetCreator() != "spiffe://eu-1/app" {
					t.Errorf("state %v, created %d, creator %q", k.GetState(), k.GetCreationTimeUnixNano(), k.GetCreator())
				}
				if k.GetDeletionTimeUnixNano() != 0 || k.GetRotationEnabled() || k.GetNextRotationTimeUnixNano() != 0 {
					t.Errorf("lifecycle fields not reset: %v", k)
				}
				if v := CurrentVersion(k); v.GetCreationTimeUnixNano() != t0+hour || !bytes.Equal(v.GetVersionId(), versionID(1)) {
					t.Errorf("version %v", v)
				}
				if k.GetTags()["team"] != "payments" {
					t.Errorf("tags %v", k.GetTags())
				}
			},
		},
		{
			name:    "existing id",
			cmd:     wrap(t0+hour, &fsmpb.CreateKey{Key: newKey(keyEnabled)}),
			wantErr: ErrAlreadyExists,
			wantMsg: []string{"key " + keyEnabled + " already exists"},
		},
		{
			name:    "no key",
			cmd:     wrap(t0+hour, &fsmpb.CreateKey{}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"CreateKey needs a key id"},
		},
		{
			name:    "no versions",
			cmd:     withKey(func(k *fsmpb.Key) { k.Versions = nil }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{keyNew, "exactly one key version, got 0"},
		},
		{
			name:    "two versions",
			cmd:     withKey(func(k *fsmpb.Key) { k.Versions = append(k.Versions, newVersion(2, "")) }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"exactly one key version, got 2"},
		},
		{
			name:    "short version id",
			cmd:     withKey(func(k *fsmpb.Key) { k.Versions[0].VersionId = []byte("12345678") }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{keyNew, "version id has 8 bytes, needs 16"},
		},
		{
			name:    "no key token",
			cmd:     withKey(func(k *fsmpb.Key) { k.Versions[0].KeyToken = nil }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"has no key token"},
		},
		{
			name:    "unknown domain key",
			cmd:     withKey(func(k *fsmpb.Key) { k.Versions[0].DomainKeyId = "dk-9" }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{`unknown domain key "dk-9"`},
		},
		{
			name:    "no key spec",
			cmd:     withKey(func(k *fsmpb.Key) { k.KeySpec = "" }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"CreateKey needs a key spec"},
		},
		{
			name:    "no protection level",
			cmd:     withKey(func(k *fsmpb.Key) { k.ProtectionLevel = "" }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"CreateKey needs a protection level"},
		},
		{
			name:    "description too long",
			cmd:     withKey(func(k *fsmpb.Key) { k.Description = strings.Repeat("é", maxDescriptionChars+1) }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"description has 8193 characters; the limit is 8192"},
		},
		{
			name:    "too many tags",
			cmd:     withKey(func(k *fsmpb.Key) { k.Tags = manyTags }),
			wantErr: ErrLimitExceeded,
			wantMsg: []string{"51 tags; the limit is 50"},
		},
		{
			name:    "empty tag key",
			cmd:     withKey(func(k *fsmpb.Key) { k.Tags = map[string]string{"": "v"} }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"tag key", "needs 1..128"},
		},
		{
			name:    "command without time",
			cmd:     wrap(0, &fsmpb.CreateKey{Key: newKey(keyNew)}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"command has no time"},
		},
	})
}

func TestUpdateKeyDescription(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "enabled key",
			cmd:  wrap(t0+hour, &fsmpb.UpdateKeyDescription{KeyId: keyEnabled, Description: "new"}),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.key(keyEnabled).GetDescription(); got != "new" || res.Key.GetDescription() != "new" {
					t.Errorf("description %q", got)
				}
			},
		},
		{
			name: "disabled key",
			cmd:  wrap(t0+hour, &fsmpb.UpdateKeyDescription{KeyId: keyDisabled, Description: ""}),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.key(keyDisabled).GetDescription(); got != "" {
					t.Errorf("description %q", got)
				}
			},
		},
		{
			name:    "pending deletion",
			cmd:     wrap(t0+hour, &fsmpb.UpdateKeyDescription{KeyId: keyPending, Description: "x"}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is pending deletion; UpdateKeyDescription needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     wrap(t0+hour, &fsmpb.UpdateKeyDescription{KeyId: keyMissing}),
			wantErr: ErrNotFound,
			wantMsg: []string{"key " + keyMissing + " does not exist"},
		},
		{
			name:    "no key id",
			cmd:     wrap(t0+hour, &fsmpb.UpdateKeyDescription{}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"UpdateKeyDescription needs a key id"},
		},
		{
			name:    "too long",
			cmd:     wrap(t0+hour, &fsmpb.UpdateKeyDescription{KeyId: keyEnabled, Description: strings.Repeat("x", maxDescriptionChars+1)}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"the limit is 8192"},
		},
	})
}

func TestSetKeyEnabled(t *testing.T) {
	wantState := func(id string, st fsmpb.KeyState) func(*testing.T, *harness, *Result) {
		return func(t *testing.T, h *harness, res *Result) {
			if got := h.key(id).GetState(); got != st || res.Key.GetState() != st {
				t.Errorf("state %v, result %v, want %v", got, res.Key.GetState(), st)
			}
		}
	}
	runApplyCases(t, []applyCase{
		{name: "enable disabled", cmd: wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyDisabled, Enabled: true}), check: wantState(keyDisabled, enabled)},
		{name: "disable enabled", cmd: wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyEnabled}), check: wantState(keyEnabled, disabled)},
		{name: "enable enabled is a no-op", cmd: wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyEnabled, Enabled: true}), check: wantState(keyEnabled, enabled)},
		{name: "disable disabled is a no-op", cmd: wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyDisabled}), check: wantState(keyDisabled, disabled)},
		{
			name:    "enable pending deletion",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyPending, Enabled: true}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is pending deletion; EnableKey needs Enabled or Disabled"},
		},
		{
			name:    "disable pending deletion",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyPending}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"DisableKey needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyMissing, Enabled: true}),
			wantErr: ErrNotFound,
			wantMsg: []string{keyMissing},
		},
	})
}

func TestSetKeyEnabledNoOpKeepsThePublishedKey(t *testing.T) {
	h := newHarness(t)
	before := h.key(keyEnabled)
	res := h.mustApply(wrap(t0+hour, &fsmpb.SetKeyEnabled{KeyId: keyEnabled, Enabled: true}))
	if res.Key != before || h.key(keyEnabled) != before {
		t.Error("a no-op replaced the key")
	}
}

func TestScheduleKeyDeletion(t *testing.T) {
	wantPending := func(id string, days int32) func(*testing.T, *harness, *Result) {
		return func(t *testing.T, h *harness, res *Result) {
			k := h.key(id)
			if k.GetState() != pendingDeletion || k.GetDeletionTimeUnixNano() != t0+hour+int64(days)*day || k.GetPendingWindowDays() != days {
				t.Errorf("key %v", k)
			}
		}
	}
	runApplyCases(t, []applyCase{
		{name: "enabled, 7 days", cmd: wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 7}), check: wantPending(keyEnabled, 7)},
		{name: "disabled, 30 days", cmd: wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyDisabled, PendingWindowDays: 30}), check: wantPending(keyDisabled, 30)},
		{
			name:    "window too short",
			cmd:     wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 6}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{keyEnabled, "pending window of 6 days is outside 7..30"},
		},
		{
			name:    "window too long",
			cmd:     wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 31}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"31 days"},
		},
		{
			name:    "already pending",
			cmd:     wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyPending, PendingWindowDays: 7}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is pending deletion; ScheduleKeyDeletion needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyMissing, PendingWindowDays: 7}),
			wantErr: ErrNotFound,
		},
		{
			name:    "deletion time overflows",
			cmd:     wrap(1<<63-1, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 7}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"overflows"},
		},
	})
}

func TestCancelKeyDeletion(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "pending becomes disabled",
			cmd:  wrap(t0+hour, &fsmpb.CancelKeyDeletion{KeyId: keyPending}),
			check: func(t *testing.T, h *harness, res *Result) {
				k := h.key(keyPending)
				if k.GetState() != disabled || k.GetDeletionTimeUnixNano() != 0 || k.GetPendingWindowDays() != 0 {
					t.Errorf("key %v", k)
				}
			},
		},
		{
			name:    "enabled key",
			cmd:     wrap(t0+hour, &fsmpb.CancelKeyDeletion{KeyId: keyEnabled}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyEnabled + " is enabled; CancelKeyDeletion needs PendingDeletion"},
		},
		{
			name:    "disabled key",
			cmd:     wrap(t0+hour, &fsmpb.CancelKeyDeletion{KeyId: keyDisabled}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"is disabled"},
		},
		{
			name:    "missing key",
			cmd:     wrap(t0+hour, &fsmpb.CancelKeyDeletion{KeyId: keyMissing}),
			wantErr: ErrNotFound,
		},
	})
}

func TestDeleteKey(t *testing.T) {
	deletionDue := t0 + 7*day
	runApplyCases(t, []applyCase{
		{
			name: "at the deletion time, with its aliases",
			setup: func(h *harness) {
				h.mustApply(wrap(t0, &fsmpb.CreateAlias{AliasName: "alias/doomed-1", TargetKeyId: keyDisabled}))
				h.mustApply(wrap(t0, &fsmpb.CreateAlias{AliasName: "alias/doomed-2", TargetKeyId: keyDisabled}))
				h.mustApply(wrap(t0, &fsmpb.ScheduleKeyDeletion{KeyId: keyDisabled, PendingWindowDays: 7}))
			},
			cmd: wrap(deletionDue, &fsmpb.DeleteKey{KeyId: keyDisabled}),
			check: func(t *testing.T, h *harness, res *Result) {
				if _, ok := h.f.Key(keyDisabled); ok {
					t.Error("key still present")
				}
				if res.Key.GetKeyId() != keyDisabled {
					t.Errorf("Result.Key = %v, want the removed key", res.Key)
				}
				for _, name := range []string{"alias/doomed-1", "alias/doomed-2"} {
					if _, ok := h.f.Alias(name); ok {
						t.Errorf("alias %s survived its key", name)
					}
				}
				if _, ok := h.f.Alias(aliasOfKey); !ok {
					t.Error("another key's alias was removed")
				}
			},
		},
		{
			name:    "too early",
			cmd:     wrap(deletionDue-1, &fsmpb.DeleteKey{KeyId: keyPending}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is scheduled for deletion at 2026-01-08T00:00:00Z", "too early"},
		},
		{
			name:    "not pending",
			cmd:     wrap(deletionDue, &fsmpb.DeleteKey{KeyId: keyEnabled}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"DeleteKey needs PendingDeletion"},
		},
		{
			name:    "missing key",
			cmd:     wrap(deletionDue, &fsmpb.DeleteKey{KeyId: keyMissing}),
			wantErr: ErrNotFound,
		},
	})
}

func TestKeyLifecycleRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.mustApply(wrap(t0+hour, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 10}))
	h.mustApply(wrap(t0+2*hour, &fsmpb.CancelKeyDeletion{KeyId: keyEnabled}))
	h.mustApply(wrap(t0+3*hour, &fsmpb.SetKeyEnabled{KeyId: keyEnabled, Enabled: true}))
	if k := h.key(keyEnabled); k.GetState() != enabled {
		t.Fatalf("state %v after schedule, cancel, enable", k.GetState())
	}
	// The cancelled schedule must not let an old DeleteKey proposal through.
	checkRejection(t, h.apply(wrap(t0+11*day, &fsmpb.DeleteKey{KeyId: keyEnabled})), ErrInvalidState)
}

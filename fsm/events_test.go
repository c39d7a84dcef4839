package fsm

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func TestManagementEventOperations(t *testing.T) {
	withGrant := func(h *harness) {
		g := newGrant("g-1", keyEnabled)
		g.Name = "n"
		h.mustApply(createGrant(t0, g))
	}
	named := newGrant("g-2", keyEnabled)
	named.Name = "n"
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		cmd   *fsmpb.Command
		want  string // operation key alias grant error
	}{
		{"CreateKey", nil, wrap(t0, &fsmpb.CreateKey{Key: newKey(keyNew)}), "CreateKey " + keyNew + "   "},
		{"CreateKey rejected", nil, wrap(t0, &fsmpb.CreateKey{Key: newKey(keyEnabled)}), "CreateKey " + keyEnabled + "   AlreadyExists"},
		{"UpdateKeyDescription", nil, wrap(t0, &fsmpb.UpdateKeyDescription{KeyId: keyEnabled}), "UpdateKeyDescription " + keyEnabled + "   "},
		{"EnableKey", nil, wrap(t0, &fsmpb.SetKeyEnabled{KeyId: keyDisabled, Enabled: true}), "EnableKey " + keyDisabled + "   "},
		{"DisableKey", nil, wrap(t0, &fsmpb.SetKeyEnabled{KeyId: keyMissing}), "DisableKey " + keyMissing + "   NotFound"},
		{"ScheduleKeyDeletion", nil, wrap(t0, &fsmpb.ScheduleKeyDeletion{KeyId: keyEnabled, PendingWindowDays: 3}), "ScheduleKeyDeletion " + keyEnabled + "   InvalidArgument"},
		{"CancelKeyDeletion", nil, wrap(t0, &fsmpb.CancelKeyDeletion{KeyId: keyPending}), "CancelKeyDeletion " + keyPending + "   "},
		{"DeleteKey", nil, wrap(t0, &fsmpb.DeleteKey{KeyId: keyPending}), "DeleteKey " + keyPending + "   InvalidState"},
		{"EnableKeyRotation", nil, wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 90}), "EnableKeyRotation " + keyEnabled + "   "},
		{"DisableKeyRotation", nil, wrap(t0, &fsmpb.SetKeyRotation{KeyId: keyEnabled}), "DisableKeyRotation " + keyEnabled + "   "},
		{"RotateKeyOnDemand", nil, wrap(t0, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(7, RotationOnDemand)}), "RotateKeyOnDemand " + keyEnabled + "   "},
		{"automatic RotateKey", nil, wrap(t0, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(7, RotationAutomatic)}), "RotateKey " + keyEnabled + "   InvalidState"},
		{"CreateAlias", nil, wrap(t0, &fsmpb.CreateAlias{AliasName: "alias/new", TargetKeyId: keyEnabled}), "CreateAlias " + keyEnabled + " alias/new  "},
		{"UpdateAlias", nil, wrap(t0, &fsmpb.UpdateAlias{AliasName: aliasOfKey, TargetKeyId: keyDisabled}), "UpdateAlias " + keyDisabled + " " + aliasOfKey + "  "},
		{"DeleteAlias", nil, wrap(t0, &fsmpb.DeleteAlias{AliasName: aliasOfKey}), "DeleteAlias " + keyEnabled + " " + aliasOfKey + "  "},
		{"DeleteAlias rejected", nil, wrap(t0, &fsmpb.DeleteAlias{AliasName: "alias/none"}), "DeleteAlias  alias/none  NotFound"},
		{"TagResource", nil, wrap(t0, &fsmpb.TagResource{KeyId: keyEnabled, Tags: map[string]string{"a": "b"}}), "TagResource " + keyEnabled + "   "},
		{"UntagResource", nil, wrap(t0, &fsmpb.UntagResource{KeyId: keyEnabled, TagKeys: []string{"a"}}), "UntagResource " + keyEnabled + "   "},
		{"PutKeyPolicy", nil, putPolicy(keyPending, []byte(testPolicy)), "PutKeyPolicy " + keyPending + "   InvalidState"},
		{"CreateGrant", nil, createGrant(t0, newGrant("g-9", keyEnabled)), "CreateGrant " + keyEnabled + "  g-9 "},
		{"CreateGrant returning the existing grant", withGrant, createGrant(t0, named), "CreateGrant " + keyEnabled + "  g-1 "},
		{"CreateGrant rejected", nil, createGrant(t0, newGrant("g-9", keyMissing)), "CreateGrant " + keyMissing + "  g-9 NotFound"},
		{"RetireGrant", withGrant, retire(t0, keyEnabled, "g-1"), "RetireGrant " + keyEnabled + "  g-1 "},
		{"RevokeGrant", nil, revoke(t0, keyEnabled, "g-1"), "RevokeGrant " + keyEnabled + "  g-1 NotFound"},
		{"no time", nil, wrap(0, &fsmpb.CancelKeyDeletion{KeyId: keyPending}), "CancelKeyDeletion " + keyPending + "   InvalidArgument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			tc.cmd.Principal = "spiffe://eu-1/admin"
			h.apply(tc.cmd)
			events := h.f.ManagementEvents(h.index-1, 0)
			if len(events) != 1 {
				t.Fatalf("events %v", events)
			}
			ev := events[0]
			got := strings.Join([]string{ev.GetOperation(), ev.GetKeyId(), ev.GetAliasName(), ev.GetGrantId(), ev.GetErrorKind()}, " ")
			if got != tc.want {
				t.Errorf("event %q, want %q", got, tc.want)
			}
			if ev.GetIndex() != h.index || ev.GetTimeUnixNano() != tc.cmd.GetTimeUnixNano() || ev.GetPrincipal() != "spiffe://eu-1/admin" {
				t.Errorf("event %v", ev)
			}
		})
	}
}

func TestRegionAndNodeCommandsRecordNoEvent(t *testing.T) {
	h := newEmptyHarness(t)
	for _, cmd := range []*fsmpb.Command{
		initRegion(regionName, dk1, node1),
		initRegion(regionName, dk1, node1), // rejected
		wrap(t0, &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk-2"}}),
		wrap(t0, &fsmpb.RegisterNode{Node: &fsmpb.Node{Id: "node-2"}}),
		wrap(t0, &fsmpb.DeregisterNode{Id: "node-2"}),
		{TimeUnixNano: t0}, // no operation
	} {
		h.apply(cmd)
	}
	if events := h.f.ManagementEvents(0, 0); len(events) != 0 {
		t.Errorf("events %v", events)
	}
	// The fixture's key and alias commands each recorded one.
	if n := len(newHarness(t).f.ManagementEvents(0, 0)); n != 7 {
		t.Errorf("fixture recorded %d events, want 7", n)
	}
}

// fillEvents applies n UpdateKeyDescription commands, with a RegisterNode
// (no event) before every tenth so that event indexes have gaps.
func fillEvents(h *harness, n int) {
	for i := range n {
		if i%10 == 0 {
			h.mustApply(wrap(t0, &fsmpb.RegisterNode{Node: &fsmpb.Node{Id: node1}}))
		}
		h.mustApply(wrap(t0+int64(i), &fsmpb.UpdateKeyDescription{KeyId: keyEnabled, Description: "d"}))
	}
}

func TestManagementEventsKeepsTheMostRecent(t *testing.T) {
	h := newHarness(t)
	fillEvents(h, MaxManagementEvents+700)
	all := h.f.ManagementEvents(0, 0)
	if len(all) != MaxManagementEvents {
		t.Fatalf("%d events kept, want %d", len(all), MaxManagementEvents)
	}
	if last := all[len(all)-1]; last.GetIndex() != h.index {
		t.Errorf("newest event at index %d, want %d", last.GetIndex(), h.index)
	}
	for i := 1; i < len(all); i++ {
		if all[i].GetIndex() <= all[i-1].GetIndex() {
			t.Fatalf("events out of order at %d", i)
		}
	}
	// The 7 fixture events and the first 700 updates were dropped.
	if got := all[0].GetTimeUnixNano(); got != t0+700 {
		t.Errorf("oldest kept event is update %d, want 700", got-t0)
	}

	// Paging: afterIndex exclusive, in a gap or on an event, and limit.
	for _, tc := range []struct {
		after uint64
		limit int
		first uint64
		n     int
	}{
		{0, 0, all[0].GetIndex(), MaxManagementEvents},
		{all[0].GetIndex(), 5, all[1].GetIndex(), 5},
		{all[300].GetIndex(), 300, all[301].GetIndex(), 300},
		{all[len(all)-2].GetIndex(), 0, all[len(all)-1].GetIndex(), 1},
		{h.index, 0, 0, 0},
	} {
		got := h.f.ManagementEvents(tc.after, tc.limit)
		var first uint64
		if len(got) > 0 {
			first = got[0].GetIndex()
		}
		if len(got) != tc.n || first != tc.first {
			t.Errorf("ManagementEvents(%d, %d): %d events from %d, want %d from %d",
				tc.after, tc.limit, len(got), first, tc.n, tc.first)
		}
	}
	// An index in a gap (a RegisterNode's) starts at the next event.
	for i := 1; i < len(all); i++ {
		if gap := all[i].GetIndex() - all[i-1].GetIndex(); gap > 1 {
			if got := h.f.ManagementEvents(all[i].GetIndex()-1, 1); len(got) != 1 || got[0] != all[i] {
				t.Errorf("after %d: %v, want the event at %d", all[i].GetIndex()-1, got, all[i].GetIndex())
			}
			break
		}
	}
	checkInvariants(t, h.f)
}

func TestManagementEventsSnapshot(t *testing.T) {
	h := newHarness(t)
	fillEvents(h, MaxManagementEvents-100)
	want := snapshotBytes(t, h.f)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	// Enough to fill the ring, drop several of the snapshot's chunks and
	// write into the last chunk the snapshot holds.
	fillEvents(h, 2000)
	var got bytes.Buffer
	if _, err := snap.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Error("snapshot reflects events recorded after it was taken")
	}

	snapped := snapshotBytes(t, h.f)
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snapped)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapped, snapshotBytes(t, restored)) {
		t.Fatal("restored FSM writes a different snapshot")
	}
	if a, b := h.f.ManagementEvents(0, 0), restored.ManagementEvents(0, 0); len(a) != len(b) || a[0].GetIndex() != b[0].GetIndex() {
		t.Errorf("restored events: %d from %d, original %d from %d", len(b), b[0].GetIndex(), len(a), a[0].GetIndex())
	}
	// The ring goes on alike: the next event drops the same oldest one.
	next := wrap(t0+day, &fsmpb.DeleteAlias{AliasName: aliasOfKey})
	h.mustApply(next)
	data, _ := Encode(next)
	restored.Apply(h.index, data)
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, restored)) {
		t.Error("original and restored diverge after one more event")
	}
}

func TestRestoreRejectsBrokenEventInvariants(t *testing.T) {
	event := func(index uint64) []byte {
		return marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_ManagementEvent{
			ManagementEvent: &fsmpb.ManagementEvent{Index: index, Operation: "CreateKey"}}})
	}
	full := make([][]byte, MaxManagementEvents+1)
	for i := range full {
		full[i] = event(uint64(i + 1))
	}
	if err := New(Config{}).Restore(bytes.NewReader(encodeStream(20_000, full[:MaxManagementEvents]...))); err != nil {
		t.Fatalf("a full ring: %v", err)
	}
	for name, tc := range map[string]struct {
		stream []byte
		msg    string
	}{
		"out of order":          {encodeStream(9, event(3), event(2)), "management event index 2 after 3"},
		"repeated index":        {encodeStream(9, event(3), event(3)), "management event index 3 after 3"},
		"index 0":               {encodeStream(9, event(0)), "management event index 0 outside 1..9"},
		"beyond the snapshot":   {encodeStream(9, event(10)), "management event index 10 outside 1..9"},
		"more than the bound":   {encodeStream(20_000, full...), fmt.Sprintf("more than %d management events", MaxManagementEvents)},
		"in a version 1 stream": {encodeStreamVersion(1, 9, event(1)), "format version 1 holds no"},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			restoreRejects(t, h.f, tc.stream, tc.msg)
		})
	}
}

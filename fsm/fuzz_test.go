package fsm

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// FuzzApply feeds arbitrary bytes to Apply on a populated FSM. Bytes that
// decode to a known command must never panic; a rejection must leave the
// state byte-identical; a success must keep the invariants and survive a
// snapshot round trip. Bytes that do not decode must panic.
func FuzzApply(f *testing.F) {
	g := newCommandGen(42)
	for _, data := range g.entries(f, 300) {
		f.Add(data)
	}
	for _, cmd := range []*fsmpb.Command{
		wrap(t0+8*day, &fsmpb.DeleteKey{KeyId: keyPending}),
		wrap(t0+day, &fsmpb.UpdateAlias{AliasName: aliasOfKey, TargetKeyId: keyHMAC}),
		wrap(t0+day, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(5, RotationOnDemand)}),
		wrap(t0+day, &fsmpb.TagResource{KeyId: keyEnabled, Tags: tagsN(50, "f")}),
		wrap(t0+day, &fsmpb.PutKeyPolicy{KeyId: keyDisabled, Policy: []byte(testPolicy)}),
		wrap(t0+day, &fsmpb.CreateGrant{Grant: newGrant("g-2", keyHMAC), GrantTokenKey: []byte("k"), GrantTokenDomainKeyId: dk1}),
		wrap(t0+day, &fsmpb.CreateGrant{Grant: fuzzGrant()}),
		wrap(t0+day, &fsmpb.RemoveGrant{KeyId: keyEnabled, GrantId: "g-fixture", Revoke: true}),
		wrap(t0+day, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(`{}`)}),
		wrap(t0+day, &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 1, Seq: 2}),
		wrap(t0+day, &fsmpb.RotateKey{KeyId: mrkA, Version: newVersion(6, RotationOnDemand)}),
		wrap(t0+day, &fsmpb.ScheduleKeyDeletion{KeyId: mrkA, PendingWindowDays: 7}),
		wrap(t0+day, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "us-1", Epoch: 2}),
		wrap(t0+day, &fsmpb.UpdatePrimaryRegion{KeyId: mrkB, NewPrimary: regionName, Epoch: 2, Forced: true}),
		wrap(t0+day, changeB(1, 3, 2)),
		wrap(t0+day, changeB(2, 1, 3)),
		wrap(t0+day, importB()),
		wrap(t0+day, &fsmpb.RemoveReplica{KeyId: mrkA, Region: "us-1"}),
		wrap(t0+day, &fsmpb.MergeKeyVersions{KeyId: mrkB, Versions: []*fsmpb.KeyVersion{newVersion(8, "")}}),
		wrap(t0+day, &fsmpb.SetRegionSigningKey{Token: []byte("wrapped"), DomainKeyId: dk1, PublicKey: []byte("pub")}),
		wrap(t0+day, &fsmpb.SetRegionSigningKey{Token: []byte("wrapped"), DomainKeyId: "dk-unknown", PublicKey: []byte("pub")}),
		wrap(t0+day, &fsmpb.SetRegionSigningKey{DomainKeyId: dk1, PublicKey: []byte("pub")}),
		wrap(t0+day, &fsmpb.PinPeerRegion{Region: "us-1", PublicKey: []byte("pub-us-1")}),
		wrap(t0+day, &fsmpb.PinPeerRegion{Region: regionName, PublicKey: []byte("pub")}),
		wrap(t0+day, &fsmpb.PinPeerRegion{Region: "us-1"}),
		wrap(t0+day, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(testPolicy), Description: "d", Tags: map[string]string{"t": "v"}}),
		wrap(t0+day, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1"}),
	} {
		data, _ := Encode(cmd)
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0x52, 0x05, 0x0a})

	f.Fuzz(func(t *testing.T, data []byte) {
		h := newHarness(t)
		h.mustApply(wrap(t0, &fsmpb.CreateGrant{Grant: fuzzGrant()}))
		mrkFixture(h)
		cmd := new(fsmpb.Command)
		if err := proto.Unmarshal(data, cmd); err != nil ||
			(cmd.Op == nil && len(cmd.ProtoReflect().GetUnknown()) > 0) {
			applyExpectingPanic(t, h.f, 100, data)
			return
		}
		before := stateBytes(t, h.f)
		res := h.f.Apply(100, data).(*Result)
		if h.f.AppliedIndex() != 100 {
			t.Fatalf("AppliedIndex %d", h.f.AppliedIndex())
		}
		if res.Err != nil {
			var rej *RejectError
			if !errors.As(res.Err, &rej) || RejectKindName(rej) == "" || rej.Msg == "" {
				t.Fatalf("rejection %#v is not a RejectError with a known kind and a message", res.Err)
			}
			if res.Key != nil || res.Alias != nil || res.Grant != nil {
				t.Fatal("rejection carries a record")
			}
			if _, records := eventNamesOf(cmd, res); records &&
				!recordedRejection(h.f.ManagementEvents(h.index, 0), rej) {
				t.Fatalf("rejection recorded as %v", h.f.ManagementEvents(h.index, 0))
			}
			if !bytes.Equal(before, stateBytes(t, h.f)) {
				t.Fatalf("rejected command (%v) changed the state", res.Err)
			}
			return
		}
		checkInvariants(t, h.f)
		checkMRKInvariants(t, h.f)
		snap := snapshotBytes(t, h.f)
		restored := New(Config{})
		if err := restored.Restore(bytes.NewReader(snap)); err != nil {
			t.Fatalf("snapshot after %v does not restore: %v", cmd, err)
		}
		if !bytes.Equal(snap, snapshotBytes(t, restored)) {
			t.Fatal("restored snapshot differs")
		}
	})
}

// fuzzGrant is the fuzz fixture's named grant; seeds repeat it to reach the
// idempotent path.
func fuzzGrant() *fsmpb.Grant {
	g := newGrant("g-fixture", keyEnabled)
	g.Name = "fixture"
	return g
}

func recordedRejection(events []*fsmpb.ManagementEvent, rej *RejectError) bool {
	return len(events) == 1 && events[0].GetErrorKind() == RejectKindName(rej)
}

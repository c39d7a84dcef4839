package fsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// busyHarness has rotated, tagged, aliased keys and a second domain key.
func busyHarness(t testing.TB) *harness {
	h := newHarness(t)
	h.mustApply(wrap(t0+hour, &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk-2"}, MakeActive: true}))
	h.mustApply(wrap(t0+hour, &fsmpb.RegisterNode{Node: &fsmpb.Node{Id: "node-2", RaftAddr: "10.0.0.2:7000"}}))
	h.mustApply(wrap(t0+hour, &fsmpb.TagResource{KeyId: keyEnabled, Tags: tagsN(20, "tag")}))
	h.mustApply(wrap(t0+hour, &fsmpb.SetKeyRotation{KeyId: keyEnabled, Enabled: true, RotationPeriodDays: 90}))
	h.mustApply(wrap(t0+2*hour, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(2, RotationOnDemand)}))
	h.mustApply(wrap(t0+2*hour, &fsmpb.CreateAlias{AliasName: "alias/hmac", TargetKeyId: keyHMAC}))
	return h
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	h := busyHarness(t)
	snap := snapshotBytes(t, h.f)
	if !bytes.HasPrefix(snap, []byte("TRENTFSM")) {
		t.Fatalf("snapshot starts with %q", snap[:8])
	}

	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if restored.AppliedIndex() != h.index {
		t.Errorf("restored index %d, want %d", restored.AppliedIndex(), h.index)
	}
	if again := snapshotBytes(t, restored); !bytes.Equal(snap, again) {
		t.Error("snapshot of the restored FSM differs")
	}
	if r := restored.Region(); r.GetActiveDomainKeyId() != "dk-2" {
		t.Errorf("region %v", r)
	}
	if k, ok := restored.Key(keyEnabled); !ok || len(k.GetVersions()) != 2 || len(k.GetTags()) != 20 {
		t.Errorf("key %v", k)
	}
	if dks := restored.DomainKeys(); len(dks) != 2 || dks[0].GetId() != dk1 {
		t.Errorf("domain keys %v: order must survive", dks)
	}
	checkInvariants(t, restored)

	// Restored state keeps working: the next command applies as on the original.
	next := wrap(t0+3*hour, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(3, RotationOnDemand)})
	h.mustApply(next)
	data, _ := Encode(next)
	if res := restored.Apply(h.index, data).(*Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, restored)) {
		t.Error("original and restored diverge after one more command")
	}
}

func TestRestoreReplacesEverything(t *testing.T) {
	small := newEmptyHarness(t)
	small.mustApply(initRegion("us-1", "dk-x", "n-x"))
	snap := snapshotBytes(t, small.f)

	h := busyHarness(t)
	if err := h.f.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if keys, _ := h.f.ListKeys("", 0); len(keys) != 0 {
		t.Errorf("%d keys survived a restore of a snapshot without keys", len(keys))
	}
	if _, ok := h.f.Alias(aliasOfKey); ok {
		t.Error("alias survived")
	}
	if h.f.Region().GetName() != "us-1" || h.f.AppliedIndex() != 1 {
		t.Errorf("region %v index %d", h.f.Region(), h.f.AppliedIndex())
	}
}

func TestSnapshotIsolation(t *testing.T) {
	h := busyHarness(t)
	want := snapshotBytes(t, h.f)

	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	// Change every kind of record the snapshot holds, add and remove some.
	h.mustApply(wrap(t0+day, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(3, RotationOnDemand)}))
	h.mustApply(wrap(t0+day, &fsmpb.TagResource{KeyId: keyEnabled, Tags: map[string]string{"tag00": "changed"}}))
	h.mustApply(wrap(t0+day, &fsmpb.SetKeyEnabled{KeyId: keyHMAC}))
	h.mustApply(wrap(t0+day, &fsmpb.CreateKey{Key: newKey(keyNew)}))
	h.mustApply(wrap(t0+day, &fsmpb.UpdateAlias{AliasName: aliasOfKey, TargetKeyId: keyNew}))
	h.mustApply(wrap(t0+day, &fsmpb.DeleteAlias{AliasName: "alias/hmac"}))
	h.mustApply(wrap(t0+8*day, &fsmpb.DeleteKey{KeyId: keyPending}))
	h.mustApply(wrap(t0+day, &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk-3"}, MakeActive: true}))
	h.mustApply(wrap(t0+day, &fsmpb.DeregisterNode{Id: "node-2"}))
	h.mustApply(wrap(t0+day, &fsmpb.RegisterNode{Node: &fsmpb.Node{Id: node1, RaftAddr: "moved"}}))

	var got bytes.Buffer
	if _, err := snap.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Error("snapshot reflects commands applied after it was taken")
	}
	if bytes.Equal(snapshotBytes(t, h.f), want) {
		t.Error("the commands did not change the state")
	}
}

func TestSnapshotAfterRelease(t *testing.T) {
	snap, _ := newHarness(t).f.Snapshot()
	snap.Release()
	if _, err := snap.WriteTo(io.Discard); err == nil {
		t.Error("WriteTo after Release succeeded")
	}
}

func TestSnapshotWriteError(t *testing.T) {
	snap, _ := busyHarness(t).f.Snapshot()
	boom := errors.New("disk full")
	if _, err := snap.WriteTo(failingWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// restoreMustFail restores from r into f, which is in the state before
// describes, and checks that it fails with wantErr and changes nothing.
func restoreMustFail(t *testing.T, f *FSM, before []byte, r io.Reader, wantErr error) {
	t.Helper()
	err := f.Restore(r)
	if err == nil {
		t.Fatal("Restore accepted it")
	}
	if !errors.Is(err, wantErr) {
		t.Fatalf("err = %v, want %v", err, wantErr)
	}
	if !bytes.Equal(before, snapshotBytes(t, f)) {
		t.Fatal("a failed Restore changed the state")
	}
}

// restoreRejects restores stream into f and checks that it fails as
// ErrCorruptSnapshot, with an error mentioning msg, and leaves f unchanged.
func restoreRejects(t *testing.T, f *FSM, stream []byte, msg string) {
	t.Helper()
	before := snapshotBytes(t, f)
	err := f.Restore(bytes.NewReader(stream))
	if !errors.Is(err, ErrCorruptSnapshot) || !strings.Contains(err.Error(), msg) {
		t.Errorf("err = %v, want ErrCorruptSnapshot mentioning %q", err, msg)
	}
	if !bytes.Equal(before, snapshotBytes(t, f)) {
		t.Error("state changed")
	}
}

// encodeStream writes the documented stream format (version 3)
// independently of WriteTo, from already marshalled records.
func encodeStream(index uint64, records ...[]byte) []byte {
	return encodeStreamVersion(3, index, records...)
}

func encodeStreamVersion(version uint32, index uint64, records ...[]byte) []byte {
	var b []byte
	b = append(b, "TRENTFSM"...)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint64(b, index)
	for _, rec := range records {
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func marshalRecord(t testing.TB, rec *fsmpb.SnapshotRecord) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSnapshotFormatIsAsDocumented(t *testing.T) {
	h := newEmptyHarness(t)
	h.mustApply(initRegion("us-1", "dk-x", "n-x"))
	want := encodeStream(1,
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: h.f.Region()}}),
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: h.f.DomainKeys()[0]}}),
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Node{Node: h.f.Nodes()[0]}}),
	)
	if got := snapshotBytes(t, h.f); !bytes.Equal(got, want) {
		t.Errorf("snapshot\n%x\nwant\n%x", got, want)
	}
}

// TestSnapshotRecordOrder: after the aliases come grants by id, removed
// grants in removal order, and events in index order.
func TestSnapshotRecordOrder(t *testing.T) {
	h := newEmptyHarness(t)
	h.mustApply(initRegion("us-1", dk1, "n-x"))
	key := newKey("k")
	key.Versions[0].DomainKeyId = dk1
	h.mustApply(wrap(t0, &fsmpb.CreateKey{Key: key}))
	h.mustApply(wrap(t0, &fsmpb.CreateAlias{AliasName: "alias/a", TargetKeyId: "k"}))
	for _, id := range []string{"g-c", "g-a", "g-b", "g-d"} {
		h.mustApply(createGrant(t0, newGrant(id, "k")))
	}
	h.mustApply(retire(t0+2, "k", "g-d"))
	h.mustApply(retire(t0+1, "k", "g-b"))
	rec := func(r *fsmpb.SnapshotRecord) []byte { return marshalRecord(t, r) }
	grant := func(id string) []byte {
		g, _ := h.f.Grant(id)
		return rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Grant{Grant: g}})
	}
	removed := func(id string, at int64) []byte {
		return rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_RemovedGrant{RemovedGrant: &fsmpb.RemovedGrant{GrantId: id, KeyId: "k", RemovalTimeUnixNano: at}}})
	}
	k, _ := h.f.Key("k")
	a, _ := h.f.Alias("alias/a")
	records := [][]byte{
		rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: h.f.Region()}}),
		rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: h.f.DomainKeys()[0]}}),
		rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Node{Node: h.f.Nodes()[0]}}),
		rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: k}}),
		rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Alias{Alias: a}}),
		grant("g-a"), grant("g-c"),
		removed("g-d", t0+2), removed("g-b", t0+1),
	}
	events := h.f.ManagementEvents(0, 0)
	if len(events) != 8 {
		t.Fatalf("%d events", len(events))
	}
	for _, ev := range events {
		records = append(records, rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_ManagementEvent{ManagementEvent: ev}}))
	}
	if got, want := snapshotBytes(t, h.f), encodeStream(h.index, records...); !bytes.Equal(got, want) {
		t.Errorf("snapshot\n%x\nwant\n%x", got, want)
	}
}

// TestRestoreReadsVersion1: snapshots written before grants and events
// existed still restore, and are written back as version 3.
func TestRestoreReadsVersion1(t *testing.T) {
	key := newKey(keyNew)
	key.State = enabled
	records := [][]byte{
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: &fsmpb.Region{Name: "r", ActiveDomainKeyId: dk1}}}),
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: &fsmpb.DomainKey{Id: dk1}}}),
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: key}}),
		marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Alias{Alias: &fsmpb.Alias{Name: "alias/x", TargetKeyId: keyNew}}}),
	}
	f := New(Config{})
	if err := f.Restore(bytes.NewReader(encodeStreamVersion(1, 42, records...))); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Key(keyNew); !ok || f.AppliedIndex() != 42 {
		t.Fatalf("key missing or index %d", f.AppliedIndex())
	}
	if got, want := snapshotBytes(t, f), encodeStream(42, records...); !bytes.Equal(got, want) {
		t.Errorf("re-written snapshot\n%x\nwant\n%x", got, want)
	}
	// The restored state takes the new commands.
	h := &harness{t: t, f: f, index: 42}
	h.mustApply(createGrant(t0, newGrant("g-1", keyNew)))
	h.mustApply(putPolicy(keyNew, []byte(testPolicy)))
}

func TestRestoreRejectsTruncatedStreams(t *testing.T) {
	h := busyHarness(t)
	other := busyHarness(t)
	other.mustApply(wrap(t0+day, &fsmpb.CreateKey{Key: newKey(keyNew)}))
	snap := snapshotBytes(t, other.f)
	before := snapshotBytes(t, h.f)
	for n := range len(snap) {
		restoreMustFail(t, h.f, before, bytes.NewReader(snap[:n]), ErrCorruptSnapshot)
	}
}

func TestRestoreRejectsDamagedStreams(t *testing.T) {
	h := busyHarness(t)
	other := busyHarness(t)
	other.mustApply(wrap(t0+day, &fsmpb.CreateKey{Key: newKey(keyNew)}))
	snap := snapshotBytes(t, other.f)
	before := snapshotBytes(t, h.f)
	for i := range snap {
		damaged := bytes.Clone(snap)
		damaged[i] ^= 1 << (i % 8)
		restoreMustFail(t, h.f, before, bytes.NewReader(damaged), ErrCorruptSnapshot)
	}
	restoreMustFail(t, h.f, before, bytes.NewReader(append(bytes.Clone(snap), 0)), ErrCorruptSnapshot)
}

func TestRestoreRejectsInconsistentStreams(t *testing.T) {
	key := newKey(keyNew)
	key.State = enabled
	keyRec := marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: key}})
	noVersions := &fsmpb.Key{KeyId: "k", State: enabled}
	unknownRecord := protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte("x"))
	bigLength := binary.AppendUvarint(nil, maxSnapshotRecordLen+1)
	dkRec := marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk"}}})
	signingRegion := func(signingDK string) []byte {
		return marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: &fsmpb.Region{
			Name: "r", ActiveDomainKeyId: "dk", SigningKeyToken: []byte("w"), SigningDomainKeyId: signingDK,
			SigningPublicKey: []byte("pub"), PeerSigningKeys: map[string][]byte{"us-1": []byte("pub-us-1")}}}})
	}
	// The same region with its signing key under the domain key present restores.
	if err := New(Config{}).Restore(bytes.NewReader(encodeStream(1, signingRegion("dk"), dkRec))); err != nil {
		t.Fatalf("valid signing key: %v", err)
	}

	for name, tc := range map[string]struct {
		stream []byte
		msg    string
	}{
		"bad magic":         {append([]byte("TRENTFSX"), encodeStream(1)[8:]...), "not a Trent FSM snapshot"},
		"newer format":      {func() []byte { b := encodeStreamVersion(4, 1); return b }(), "format version 4, this build reads 1 to 3"},
		"format version 0":  {func() []byte { b := encodeStreamVersion(0, 1); return b }(), "format version 0, this build reads 1 to 3"},
		"unknown record":    {encodeStream(1, unknownRecord), "record 0: record of an unknown type"},
		"undecodable":       {encodeStream(1, []byte{0x22, 0x05}), "record 0:"},
		"duplicate key":     {encodeStream(1, keyRec, keyRec), "record 1: key id"},
		"key with no state": {encodeStream(1, marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: newKey("k")}})), "state KEY_STATE_UNSPECIFIED"},
		"key without versions": {
			encodeStream(1, marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: noVersions}})),
			"key k without versions",
		},
		"alias without its key": {
			encodeStream(1, marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Alias{Alias: &fsmpb.Alias{Name: "alias/x", TargetKeyId: "gone"}}})),
			`alias alias/x points at missing key "gone"`,
		},
		"region without its domain key": {
			encodeStream(1, marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: &fsmpb.Region{Name: "r", ActiveDomainKeyId: "dk"}}})),
			`active domain key "dk" is not in the snapshot`,
		},
		"signing key under a missing domain key": {
			encodeStream(1, signingRegion("dk-gone"), dkRec),
			`signing key is wrapped under domain key "dk-gone", which is not in the snapshot`,
		},
		"signing key without a domain key": {
			encodeStream(1, signingRegion(""), dkRec),
			`signing key is wrapped under domain key ""`,
		},
		"huge record": {append(encodeStream(1)[:snapshotHeaderLen], bigLength...), "claims"},
		"large record on a short stream": {
			append(binary.AppendUvarint(encodeStream(1)[:snapshotHeaderLen], 32<<20), "only this"...),
			"stream ends inside record 0",
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := busyHarness(t)
			restoreRejects(t, h.f, tc.stream, tc.msg)
		})
	}
}

func TestRestoreReportsReadErrors(t *testing.T) {
	h := busyHarness(t)
	boom := errors.New("connection reset")
	snap := snapshotBytes(t, h.f)
	restoreMustFail(t, h.f, snap, io.MultiReader(bytes.NewReader(snap[:100]), iotest.ErrReader(boom)), boom)
	// Short reads are not errors.
	if err := h.f.Restore(iotest.OneByteReader(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreReleasesWaiters(t *testing.T) {
	h := busyHarness(t)
	snap := snapshotBytes(t, h.f)
	f := New(Config{})
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(context.Background(), h.index) }()
	if err := f.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not released by Restore")
	}
}

package fsm

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

const (
	mrkA = "mrk-0123456789abcdef0123456789abcdef"
	mrkB = "mrk-fedcba9876543210fedcba9876543210"
)

func newMRK(id string) *fsmpb.Key {
	k := newKey(id)
	k.MultiRegion = &fsmpb.MultiRegion{}
	return k
}

// world is several regions, each its own FSM, and a replicator that moves
// commands between them as regions/ will, minus the network: links can be
// cut to partition regions.
type world struct {
	t       *testing.T
	regions map[string]*harness
	now     int64
	cut     map[[2]string]bool // from, to
}

func dkOf(region string) string { return "dk-" + region }

func newWorld(t *testing.T, names ...string) *world {
	w := &world{t: t, regions: map[string]*harness{}, now: t0, cut: map[[2]string]bool{}}
	for _, name := range names {
		h := newEmptyHarness(t)
		h.mustApply(initRegion(name, dkOf(name), "node-"+name))
		w.regions[name] = h
	}
	return w
}

func (w *world) tick() int64 { w.now += hour; return w.now }

func (w *world) apply(region string, op proto.Message) *Result {
	w.t.Helper()
	return w.regions[region].apply(wrap(w.tick(), op))
}

func (w *world) must(region string, op proto.Message) *fsmpb.Key {
	w.t.Helper()
	res := w.regions[region].mustApply(wrap(w.tick(), op))
	return res.Key
}

func (w *world) key(region, id string) *fsmpb.Key {
	w.t.Helper()
	return w.regions[region].key(id)
}

// partition cuts (heal: restores) both directions between a and each of
// others.
func (w *world) partition(a string, heal bool, others ...string) {
	for _, b := range others {
		w.cut[[2]string{a, b}] = !heal
		w.cut[[2]string{b, a}] = !heal
	}
}

// delivery is one shipment: a command for region to and, when it applies
// there, the ack the sender records.
type delivery struct {
	from, to string
	keyID    string
	cmd      proto.Message
	ackSeq   uint64
	ackEpoch uint64
	ack      bool
}

// rewrap stands in for the proposer's HSM work: the receiver's copy of a
// version is wrapped under its own domain key.
func rewrap(versions []*fsmpb.KeyVersion, to string) []*fsmpb.KeyVersion {
	out := make([]*fsmpb.KeyVersion, len(versions))
	for i, v := range versions {
		c := proto.Clone(v).(*fsmpb.KeyVersion)
		c.DomainKeyId = dkOf(to)
		c.KeyToken = append([]byte("wrapped-for-"+to+"-"), v.GetVersionId()...)
		out[i] = c
	}
	return out
}

// outbox is what region from's replicator would ship now, read only through
// the public API.
func (w *world) outbox(from string) []delivery {
	var out []delivery
	f := w.regions[from].f
	for _, k := range f.MultiRegionKeysToShip("") {
		mr := k.GetMultiRegion()
		for _, to := range ShipTargets(k, from) {
			if w.cut[[2]string{from, to}] {
				continue
			}
			d := delivery{from: from, to: to, keyID: k.GetKeyId()}
			if mr.GetPrimaryRegion() != from {
				var unshipped []*fsmpb.KeyVersion
				for _, v := range k.GetVersions() {
					if v.GetUnshipped() {
						unshipped = append(unshipped, v)
					}
				}
				d.cmd = &fsmpb.MergeKeyVersions{KeyId: k.GetKeyId(), Versions: rewrap(unshipped, to)}
				if len(unshipped) == 0 {
					// Only the replica's deletion to report: the primary
					// records it on its own entry, as the replicator there
					// does on receiving the report.
					pmr := w.key(to, k.GetKeyId()).GetMultiRegion()
					rep := pmr.GetReplicas()[replicaIndex(pmr.GetReplicas(), from)]
					d.cmd = &fsmpb.AckReplica{KeyId: k.GetKeyId(), Region: from, Epoch: pmr.GetEpoch(), Seq: rep.GetAckedSeq(),
						Deleting: k.GetState() == pendingDeletion}
				}
				out = append(out, d)
				continue
			}
			d.ack, d.ackSeq, d.ackEpoch = true, mr.GetSharedSeq(), mr.GetEpoch()
			rep := mr.GetReplicas()[replicaIndex(mr.GetReplicas(), to)]
			if rep.GetAckedSeq() >= mr.GetSharedSeq() {
				// A caught-up replica being deleted, listed so that the
				// replicator probes it now and then; probes are not
				// modelled here.
				continue
			}
			if rep.GetState() == replicaCreating {
				d.cmd = &fsmpb.ImportReplicaKey{Key: &fsmpb.Key{
					KeyId: k.GetKeyId(), Description: "replica in " + to,
					KeySpec: k.GetKeySpec(), KeyUsage: k.GetKeyUsage(), ProtectionLevel: k.GetProtectionLevel(),
					Origin: k.GetOrigin(), RotationEnabled: k.GetRotationEnabled(),
					RotationPeriodDays: k.GetRotationPeriodDays(), NextRotationTimeUnixNano: k.GetNextRotationTimeUnixNano(),
					Versions: rewrap(k.GetVersions(), to),
					MultiRegion: &fsmpb.MultiRegion{
						PrimaryRegion: from, Epoch: mr.GetEpoch(), AppliedSeq: mr.GetSharedSeq(),
						Replicas: mr.GetReplicas(), CurrentVersionId: mr.GetCurrentVersionId(),
					},
				}}
			} else {
				d.cmd = sharedChange(k, to)
			}
			out = append(out, d)
		}
	}
	return out
}

func sharedChange(k *fsmpb.Key, to string) *fsmpb.ApplySharedChange {
	mr := k.GetMultiRegion()
	return &fsmpb.ApplySharedChange{
		KeyId: k.GetKeyId(), PrimaryRegion: mr.GetPrimaryRegion(), Epoch: mr.GetEpoch(), Seq: mr.GetSharedSeq(),
		Versions: rewrap(k.GetVersions(), to), CurrentVersionId: mr.GetCurrentVersionId(),
		RotationEnabled: k.GetRotationEnabled(), RotationPeriodDays: k.GetRotationPeriodDays(),
		NextRotationTimeUnixNano: k.GetNextRotationTimeUnixNano(), Replicas: mr.GetReplicas(),
	}
}

// deliver applies d at its receiver and, if it applied, the ack at its
// sender, as the replicator on the sender's leader does.
func (w *world) deliver(d delivery) {
	w.t.Helper()
	res := w.apply(d.to, d.cmd)
	if res.Err != nil {
		w.t.Fatalf("%s → %s: %T rejected: %v", d.from, d.to, d.cmd, res.Err)
	}
	if !d.ack {
		return
	}
	deleting := res.Key.GetState() == pendingDeletion
	w.must(d.from, &fsmpb.AckReplica{KeyId: d.keyID, Region: d.to, Epoch: d.ackEpoch, Seq: d.ackSeq, Deleting: deleting})
}

// sync runs every region's replicator until nothing is left to ship over
// the links that are up.
func (w *world) sync() {
	w.t.Helper()
	for range 30 {
		moved := false
		for _, name := range slices.Sorted(maps.Keys(w.regions)) {
			for _, d := range w.outbox(name) {
				w.deliver(d)
				moved = true
			}
		}
		if !moved {
			for _, h := range w.regions {
				checkInvariants(w.t, h.f)
				checkMRKInvariants(w.t, h.f)
			}
			return
		}
	}
	w.t.Fatal("replication did not settle in 30 rounds")
}

// checkMRKInvariants checks what Apply keeps for multi-region keys and that
// a snapshot of the region restores to the same bytes and shipping index.
func checkMRKInvariants(t testing.TB, f *FSM) {
	t.Helper()
	keys, _ := f.ListKeys("", 0)
	here := f.Region().GetName()
	for _, k := range keys {
		if err := checkMultiRegion(k, here); err != nil {
			t.Error(err)
		}
	}
	snap := snapshotBytes(t, f)
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !bytes.Equal(snap, snapshotBytes(t, restored)) {
		t.Error("restored snapshot differs")
	}
	if a, b := shipIDs(f), shipIDs(restored); !slices.Equal(a, b) {
		t.Errorf("keys to ship %v, after restore %v", a, b)
	}
}

func shipIDs(f *FSM) []string {
	var ids []string
	for _, k := range f.MultiRegionKeysToShip("") {
		ids = append(ids, k.GetKeyId())
	}
	return ids
}

func versionIDs(k *fsmpb.Key) []string {
	var ids []string
	for _, v := range k.GetVersions() {
		ids = append(ids, fmt.Sprintf("%x", v.GetVersionId()[:1]))
	}
	slices.Sort(ids)
	return ids
}

func rotation(seed byte) *fsmpb.RotateKey {
	v := newVersion(seed, RotationOnDemand)
	return &fsmpb.RotateKey{KeyId: mrkA, Version: v}
}

// threeRegions has mrkA with its primary in us-1 and replicas in eu-1 and
// ap-1, all replicated.
func threeRegions(t *testing.T) *world {
	w := newWorld(t, "us-1", "eu-1", "ap-1")
	k := newMRK(mrkA)
	k.Versions[0].DomainKeyId = dkOf("us-1")
	w.must("us-1", &fsmpb.CreateKey{Key: k})
	w.must("us-1", &fsmpb.AddReplica{KeyId: mrkA, Region: "eu-1", Policy: []byte(`{}`)})
	w.must("us-1", &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(`{}`)})
	w.sync()
	return w
}

func (w *world) rotateAt(region string, seed byte) {
	w.t.Helper()
	v := newVersion(seed, RotationOnDemand)
	v.DomainKeyId = dkOf(region)
	w.must(region, &fsmpb.RotateKey{KeyId: mrkA, Version: v})
}

func TestMRKCreateAndReplicate(t *testing.T) {
	w := newWorld(t, "us-1", "eu-1")
	k := newMRK(mrkA)
	k.Versions[0].DomainKeyId = dkOf("us-1")
	created := w.must("us-1", &fsmpb.CreateKey{Key: k})
	mr := created.GetMultiRegion()
	if mr.GetPrimaryRegion() != "us-1" || mr.GetEpoch() != 1 || mr.GetSharedSeq() != 1 ||
		!bytes.Equal(mr.GetCurrentVersionId(), versionID(1)) {
		t.Fatalf("created %v", mr)
	}
	if got := shipIDs(w.regions["us-1"].f); len(got) != 0 {
		t.Errorf("a key without replicas is to be shipped: %v", got)
	}

	primary := w.must("us-1", &fsmpb.AddReplica{KeyId: mrkA, Region: "eu-1", Policy: []byte(`{}`)})
	if r := primary.GetMultiRegion().GetReplicas(); len(r) != 1 || r[0].GetState() != replicaCreating || r[0].GetAckedSeq() != 0 {
		t.Fatalf("replicas after AddReplica: %v", r)
	}
	if got := w.regions["us-1"].f.MultiRegionKeysToShip("eu-1"); len(got) != 1 {
		t.Fatalf("keys to ship to eu-1: %v", got)
	}
	if got := w.regions["us-1"].f.MultiRegionKeysToShip("ap-1"); len(got) != 0 {
		t.Fatalf("keys to ship to ap-1: %v", got)
	}
	w.sync()

	replica := w.key("eu-1", mrkA)
	rmr := replica.GetMultiRegion()
	if replica.GetState() != enabled || rmr.GetPrimaryRegion() != "us-1" || rmr.GetAppliedSeq() != 2 ||
		rmr.GetSharedSeq() != 0 || replica.GetDescription() != "replica in eu-1" {
		t.Fatalf("replica %v", replica)
	}
	if v := CurrentVersion(replica); !bytes.Equal(v.GetVersionId(), versionID(1)) || v.GetDomainKeyId() != dkOf("eu-1") {
		t.Errorf("replica's current version %v", v)
	}
	rep := w.key("us-1", mrkA).GetMultiRegion().GetReplicas()[0]
	if rep.GetState() != replicaActive || rep.GetAckedSeq() != 2 || rep.GetAckedTimeUnixNano() == 0 {
		t.Errorf("replica at the primary after the ack: %v", rep)
	}
	for _, region := range []string{"us-1", "eu-1"} {
		if got := shipIDs(w.regions[region].f); len(got) != 0 {
			t.Errorf("%s still has keys to ship: %v", region, got)
		}
	}
	events := w.regions["eu-1"].f.ManagementEvents(0, 0)
	if last := events[len(events)-1]; last.GetOperation() != "ReplicateKey" || last.GetKeyId() != mrkA {
		t.Errorf("replica region's event %v", last)
	}
}

func TestMRKRotationStaysPendingUntilEveryReplicaAcks(t *testing.T) {
	w := threeRegions(t)
	w.rotateAt("us-1", 2)
	k := w.key("us-1", mrkA)
	v2, _ := FindVersion(k, versionID(2))
	if !v2.GetPending() || v2.GetOriginRegion() != "us-1" || v2.GetOriginEpoch() != 1 {
		t.Fatalf("rotated version %v", v2)
	}
	if cur := CurrentVersion(k); !bytes.Equal(cur.GetVersionId(), versionID(1)) {
		t.Fatalf("Encrypt would use %x, a pending version", cur.GetVersionId())
	}

	w.partition("ap-1", false, "us-1", "eu-1")
	w.sync()
	if v, _ := FindVersion(w.key("us-1", mrkA), versionID(2)); !v.GetPending() {
		t.Fatal("version stopped pending before ap-1 acked it")
	}
	eu := w.key("eu-1", mrkA)
	if _, ok := FindVersion(eu, versionID(2)); !ok {
		t.Fatal("eu-1 lacks the new version")
	}
	if cur := CurrentVersion(eu); !bytes.Equal(cur.GetVersionId(), versionID(1)) {
		t.Fatalf("eu-1 encrypts under %x before every region has it", cur.GetVersionId())
	}

	w.partition("ap-1", true, "us-1", "eu-1")
	w.sync()
	for _, region := range []string{"us-1", "eu-1", "ap-1"} {
		k := w.key(region, mrkA)
		if cur := CurrentVersion(k); !bytes.Equal(cur.GetVersionId(), versionID(2)) {
			t.Errorf("%s: current version %x, want the rotated one", region, cur.GetVersionId())
		}
	}
}

func TestMRKRotationWithoutReplicasIsCurrentAtOnce(t *testing.T) {
	w := newWorld(t, "us-1")
	k := newMRK(mrkA)
	k.Versions[0].DomainKeyId = dkOf("us-1")
	w.must("us-1", &fsmpb.CreateKey{Key: k})
	w.rotateAt("us-1", 2)
	if cur := CurrentVersion(w.key("us-1", mrkA)); !bytes.Equal(cur.GetVersionId(), versionID(2)) || cur.GetPending() {
		t.Fatalf("current %v", cur)
	}
}

// Shipments may arrive twice, late or out of order; the replica ends where
// in-order delivery would leave it.
func TestMRKSharedChangesAreIdempotentAndCommute(t *testing.T) {
	w := threeRegions(t)
	var changes []*fsmpb.ApplySharedChange
	for seed := byte(2); seed <= 4; seed++ {
		w.rotateAt("us-1", seed)
		changes = append(changes, sharedChange(w.key("us-1", mrkA), "eu-1"))
		w.must("us-1", &fsmpb.SetKeyRotation{KeyId: mrkA, Enabled: seed%2 == 0, RotationPeriodDays: 90 + int32(seed)})
		changes = append(changes, sharedChange(w.key("us-1", mrkA), "eu-1"))
	}
	inOrder := w.regions["eu-1"]
	before := stateBytes(t, inOrder.f)
	for _, c := range changes {
		w.must("eu-1", c)
	}
	want := w.key("eu-1", mrkA)

	// Replay onto a copy of eu-1's earlier state: reversed, then everything
	// twice more in order.
	other := newEmptyHarness(t)
	if err := other.f.Restore(bytes.NewReader(snapshotBytesOf(t, before, inOrder.f))); err != nil {
		t.Fatal(err)
	}
	w.regions["eu-2"] = other
	for i := len(changes) - 1; i >= 0; i-- {
		w.must("eu-2", changes[i])
	}
	for range 2 {
		for _, c := range changes {
			w.must("eu-2", c)
		}
	}
	got := w.key("eu-2", mrkA)
	if !slices.Equal(versionIDs(got), versionIDs(want)) ||
		!bytes.Equal(got.GetMultiRegion().GetCurrentVersionId(), want.GetMultiRegion().GetCurrentVersionId()) ||
		got.GetMultiRegion().GetAppliedSeq() != want.GetMultiRegion().GetAppliedSeq() ||
		got.GetRotationEnabled() != want.GetRotationEnabled() || got.GetRotationPeriodDays() != want.GetRotationPeriodDays() {
		t.Errorf("reordered replica\n%v\nin-order replica\n%v", got, want)
	}
	// A stale change after the newest is not an error and changes nothing.
	snap := stateBytes(t, other.f)
	w.must("eu-2", changes[0])
	if !bytes.Equal(snap, stateBytes(t, other.f)) {
		t.Error("a stale change modified the key")
	}
}

// snapshotBytesOf rebuilds a full stream from stateBytes' records, so a test
// can fork a region at an earlier state.
func snapshotBytesOf(t *testing.T, records []byte, f *FSM) []byte {
	t.Helper()
	var recs [][]byte
	for len(records) > 0 {
		n, w := uvarint(records)
		recs = append(recs, records[w:w+int(n)])
		records = records[w+int(n):]
	}
	return encodeStream(f.AppliedIndex(), recs...)
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		x |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

func TestMRKIndependentPropertiesSurviveSharedChanges(t *testing.T) {
	w := threeRegions(t)
	w.must("eu-1", &fsmpb.UpdateKeyDescription{KeyId: mrkA, Description: "eu's own"})
	w.must("eu-1", &fsmpb.TagResource{KeyId: mrkA, Tags: map[string]string{"team": "eu"}})
	w.must("eu-1", &fsmpb.PutKeyPolicy{KeyId: mrkA, Policy: []byte(testPolicy)})
	w.must("eu-1", &fsmpb.SetKeyEnabled{KeyId: mrkA, Enabled: false})
	w.must("eu-1", &fsmpb.CreateAlias{AliasName: "alias/eu", TargetKeyId: mrkA})

	w.must("us-1", &fsmpb.UpdateKeyDescription{KeyId: mrkA, Description: "primary's"})
	w.must("us-1", &fsmpb.SetKeyRotation{KeyId: mrkA, Enabled: true, RotationPeriodDays: 180})
	w.rotateAt("us-1", 2)
	w.sync()

	eu := w.key("eu-1", mrkA)
	if eu.GetDescription() != "eu's own" || eu.GetTags()["team"] != "eu" || string(eu.GetPolicy()) != testPolicy ||
		eu.GetState() != disabled {
		t.Errorf("replica's own properties were overwritten: %v", eu)
	}
	if _, ok := w.regions["eu-1"].f.Alias("alias/eu"); !ok {
		t.Error("replica's alias lost")
	}
	if !eu.GetRotationEnabled() || eu.GetRotationPeriodDays() != 180 || !bytes.Equal(CurrentVersion(eu).GetVersionId(), versionID(2)) {
		t.Errorf("replica lacks the shared properties: %v", eu)
	}
	if ap := w.key("ap-1", mrkA); ap.GetDescription() != "replica in ap-1" || ap.GetState() != enabled {
		t.Errorf("ap-1 replica %v", ap)
	}
	// A replica is never due for rotation: its primary rotates.
	if rotate, _ := w.regions["ap-1"].f.KeysDue(w.now + 400*day); len(rotate) != 0 {
		t.Errorf("replica due for rotation: %v", rotate)
	}
	if rotate, _ := w.regions["us-1"].f.KeysDue(w.now + 400*day); !slices.Equal(rotate, []string{mrkA}) {
		t.Errorf("primary due for rotation: %v", rotate)
	}
}

// A replica is promoted while the primary is cut off; both sides rotate
// during the split and the old primary's link towards eu-1 works one way
// for a while, so its rotation is used for Encrypt. After healing, every
// version is in every region and the new primary's current version is
// current everywhere.
func TestMRKForcedFailoverAndFailback(t *testing.T) {
	w := threeRegions(t)
	w.partition("us-1", false, "eu-1", "ap-1")

	promoted := w.must("eu-1", &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "eu-1", Epoch: 2, Forced: true})
	pmr := promoted.GetMultiRegion()
	if pmr.GetPrimaryRegion() != "eu-1" || pmr.GetEpoch() != 2 || pmr.GetSharedSeq() != 1 {
		t.Fatalf("promoted %v", pmr)
	}
	var regions []string
	for _, r := range pmr.GetReplicas() {
		regions = append(regions, r.GetRegion())
	}
	if !slices.Equal(regions, []string{"ap-1", "us-1"}) {
		t.Fatalf("promoted key's replicas %v", regions)
	}

	w.rotateAt("us-1", 0xa) // the old primary, unaware
	w.rotateAt("eu-1", 0xb) // the new primary
	w.sync()                // eu-1 ↔ ap-1 only
	if ap := w.key("ap-1", mrkA); ap.GetMultiRegion().GetEpoch() != 2 || ap.GetMultiRegion().GetPrimaryRegion() != "eu-1" {
		t.Fatalf("ap-1 did not follow the new primary: %v", ap.GetMultiRegion())
	}
	if v, _ := FindVersion(w.key("eu-1", mrkA), versionID(0xb)); !v.GetPending() {
		t.Fatal("eu-1's version is usable before us-1 has it")
	}

	// us-1 reaches eu-1 and ap-1 one way: its epoch 1 changes are merged,
	// not obeyed, and acked, so us-1 starts using version a.
	w.cut[[2]string{"us-1", "eu-1"}], w.cut[[2]string{"us-1", "ap-1"}] = false, false
	w.sync()
	if cur := CurrentVersion(w.key("us-1", mrkA)); !bytes.Equal(cur.GetVersionId(), versionID(0xa)) {
		t.Fatalf("us-1 encrypts under %x, want a", cur.GetVersionId())
	}
	eu := w.key("eu-1", mrkA)
	if eu.GetMultiRegion().GetPrimaryRegion() != "eu-1" || eu.GetMultiRegion().GetEpoch() != 2 {
		t.Fatalf("a lower epoch moved the primary: %v", eu.GetMultiRegion())
	}
	if _, ok := FindVersion(eu, versionID(0xa)); !ok {
		t.Fatal("eu-1 dropped the old primary's version")
	}

	w.partition("us-1", true, "eu-1", "ap-1")
	w.sync()
	want := []string{"01", "0a", "0b"}
	for _, region := range []string{"us-1", "eu-1", "ap-1"} {
		k := w.key(region, mrkA)
		mr := k.GetMultiRegion()
		if got := versionIDs(k); !slices.Equal(got, want) {
			t.Errorf("%s holds versions %v, want %v", region, got, want)
		}
		if cur := CurrentVersion(k); !bytes.Equal(cur.GetVersionId(), versionID(0xb)) {
			t.Errorf("%s encrypts under %x, want the new primary's b", region, cur.GetVersionId())
		}
		if mr.GetPrimaryRegion() != "eu-1" || mr.GetEpoch() != 2 {
			t.Errorf("%s: primary %s epoch %d", region, mr.GetPrimaryRegion(), mr.GetEpoch())
		}
		for _, v := range k.GetVersions() {
			if v.GetUnshipped() || v.GetPending() {
				t.Errorf("%s: version %x still unshipped or pending", region, v.GetVersionId())
			}
			if v.GetDomainKeyId() != dkOf(region) {
				t.Errorf("%s: version %x wrapped under %s", region, v.GetVersionId(), v.GetDomainKeyId())
			}
		}
	}
	if va, _ := FindVersion(w.key("ap-1", mrkA), versionID(0xa)); va.GetOriginRegion() != "us-1" || va.GetOriginEpoch() != 1 {
		t.Errorf("merged version's origin %v", va)
	}
}

func TestMRKPlannedPrimaryUpdate(t *testing.T) {
	w := threeRegions(t)
	w.rotateAt("us-1", 2)
	w.sync()
	// The caller applies it at both ends; the order does not matter.
	w.must("us-1", &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "ap-1", Epoch: 2})
	w.must("ap-1", &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "ap-1", Epoch: 2})
	w.sync()
	for _, region := range []string{"us-1", "eu-1", "ap-1"} {
		mr := w.key(region, mrkA).GetMultiRegion()
		if mr.GetPrimaryRegion() != "ap-1" || mr.GetEpoch() != 2 {
			t.Errorf("%s: %v", region, mr)
		}
	}
	if r := w.apply("us-1", rotation(3)); r.Err == nil {
		t.Error("the old primary still rotates")
	}
	w.rotateAt("ap-1", 3)
	w.sync()
	for _, region := range []string{"us-1", "eu-1", "ap-1"} {
		if cur := CurrentVersion(w.key(region, mrkA)); !bytes.Equal(cur.GetVersionId(), versionID(3)) {
			t.Errorf("%s: current %x", region, cur.GetVersionId())
		}
	}
}

// Two replicas forced into the same epoch while cut off from each other
// converge on one primary: the smaller region name.
func TestMRKEqualEpochPromotionsConverge(t *testing.T) {
	w := threeRegions(t)
	w.partition("us-1", false, "eu-1", "ap-1")
	w.partition("eu-1", false, "ap-1")
	w.must("eu-1", &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "eu-1", Epoch: 2, Forced: true})
	w.must("ap-1", &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "ap-1", Epoch: 2, Forced: true})
	w.rotateAt("eu-1", 0xe)
	w.rotateAt("ap-1", 0xf)
	w.partition("us-1", true, "eu-1", "ap-1")
	w.partition("eu-1", true, "ap-1")
	w.sync()
	for _, region := range []string{"us-1", "eu-1", "ap-1"} {
		k := w.key(region, mrkA)
		if mr := k.GetMultiRegion(); mr.GetPrimaryRegion() != "ap-1" || mr.GetEpoch() != 2 {
			t.Errorf("%s follows %s epoch %d", region, mr.GetPrimaryRegion(), mr.GetEpoch())
		}
		if got := versionIDs(k); !slices.Equal(got, []string{"01", "0e", "0f"}) {
			t.Errorf("%s holds %v", region, got)
		}
		if cur := CurrentVersion(k); !bytes.Equal(cur.GetVersionId(), versionID(0xf)) {
			t.Errorf("%s: current %x", region, cur.GetVersionId())
		}
	}
}

func TestMRKPendingReplicaDeletion(t *testing.T) {
	w := threeRegions(t)
	k := w.must("us-1", &fsmpb.ScheduleKeyDeletion{KeyId: mrkA, PendingWindowDays: 7})
	if k.GetState() != pendingReplicaDeletion || k.GetDeletionTimeUnixNano() != 0 || k.GetPendingWindowDays() != 7 {
		t.Fatalf("scheduled primary %v", k)
	}
	if _, del := w.regions["us-1"].f.KeysDue(w.now + 100*day); len(del) != 0 {
		t.Fatalf("due for deletion with replicas: %v", del)
	}
	if r := w.apply("us-1", &fsmpb.DeleteKey{KeyId: mrkA}); r.Err == nil {
		t.Fatal("DeleteKey removed a primary that has replicas")
	}

	// eu-1 schedules its replica's deletion; the next ack reports it.
	w.must("eu-1", &fsmpb.ScheduleKeyDeletion{KeyId: mrkA, PendingWindowDays: 7})
	if r := w.apply("us-1", rotation(2)); r.Err == nil {
		t.Fatal("a primary pending replica deletion rotated")
	}
	w.sync()
	eu := func() *fsmpb.Replica {
		mr := w.key("us-1", mrkA).GetMultiRegion()
		return mr.GetReplicas()[replicaIndex(mr.GetReplicas(), "eu-1")]
	}
	w.must("us-1", &fsmpb.AckReplica{KeyId: mrkA, Region: "eu-1", Epoch: 1, Seq: eu().GetAckedSeq(), Deleting: true})
	if st := eu().GetState(); st != replicaDeleting {
		t.Fatalf("eu-1 replica is %v", st)
	}
	w.regions["eu-1"].mustApply(wrap(w.now+8*day, &fsmpb.DeleteKey{KeyId: mrkA}))
	w.must("us-1", &fsmpb.RemoveReplica{KeyId: mrkA, Region: "eu-1"})
	w.must("us-1", &fsmpb.RemoveReplica{KeyId: mrkA, Region: "eu-1"}) // repeated
	if st := w.key("us-1", mrkA).GetState(); st != pendingReplicaDeletion {
		t.Fatalf("primary %v with one replica left", st)
	}
	removed := w.must("us-1", &fsmpb.RemoveReplica{KeyId: mrkA, Region: "ap-1"})
	if removed.GetState() != pendingDeletion || removed.GetDeletionTimeUnixNano() != w.now+7*day {
		t.Fatalf("after the last replica: %v at %d", removed.GetState(), removed.GetDeletionTimeUnixNano())
	}
	w.regions["us-1"].mustApply(wrap(w.now+7*day, &fsmpb.DeleteKey{KeyId: mrkA}))
	if _, ok := w.regions["us-1"].f.Key(mrkA); ok {
		t.Fatal("key not deleted")
	}
	if got := shipIDs(w.regions["us-1"].f); len(got) != 0 {
		t.Errorf("deleted key still to be shipped: %v", got)
	}
}

func TestMRKCancelPendingReplicaDeletion(t *testing.T) {
	w := threeRegions(t)
	w.must("us-1", &fsmpb.ScheduleKeyDeletion{KeyId: mrkA, PendingWindowDays: 7})
	k := w.must("us-1", &fsmpb.CancelKeyDeletion{KeyId: mrkA})
	if k.GetState() != disabled || k.GetPendingWindowDays() != 0 {
		t.Fatalf("cancelled %v", k)
	}
}

// mrkFixture adds to newHarness's region (eu-1) a multi-region primary mrkA
// with a replica in us-1, and a replica mrkB whose primary is us-1.
func mrkFixture(h *harness) {
	h.mustApply(wrap(t0, &fsmpb.CreateKey{Key: newMRK(mrkA)}))
	h.mustApply(wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "us-1", Policy: []byte(`{}`)}))
	h.mustApply(wrap(t0, importB()))
}

func importB() *fsmpb.ImportReplicaKey {
	k := newKey(mrkB)
	k.MultiRegion = &fsmpb.MultiRegion{PrimaryRegion: "us-1", Epoch: 1, AppliedSeq: 2, CurrentVersionId: versionID(1),
		Replicas: []*fsmpb.Replica{{Region: regionName, State: replicaCreating}}}
	return &fsmpb.ImportReplicaKey{Key: k}
}

func changeB(epoch, seq uint64, seeds ...byte) *fsmpb.ApplySharedChange {
	c := &fsmpb.ApplySharedChange{KeyId: mrkB, PrimaryRegion: "us-1", Epoch: epoch, Seq: seq, CurrentVersionId: versionID(1)}
	for _, s := range append([]byte{1}, seeds...) {
		c.Versions = append(c.Versions, newVersion(s, ""))
	}
	return c
}

// mrkActiveFixture is mrkFixture with us-1's replica of mrkA created.
func mrkActiveFixture(h *harness) {
	mrkFixture(h)
	h.mustApply(wrap(t0, &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 1, Seq: 2}))
}

func TestMRKApply(t *testing.T) {
	setup := mrkFixture
	cases := []applyCase{
		{name: "CreateKey multi-region with a plain id", setup: setup,
			cmd:     wrap(t0, &fsmpb.CreateKey{Key: newMRK(keyNew)}),
			wantErr: ErrInvalidArgument, wantMsg: []string{keyNew, "mrk-", "32 lowercase hex"}},
		{name: "CreateKey multi-region with upper-case hex", setup: setup,
			cmd:     wrap(t0, &fsmpb.CreateKey{Key: newMRK("mrk-0123456789ABCDEF0123456789ABCDEF")}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"32 lowercase hex"}},
		{name: "CreateKey single-region with an mrk id", setup: setup,
			cmd:     wrap(t0, &fsmpb.CreateKey{Key: newKey("mrk-00000000000000000000000000000000")}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"reserved for multi-region keys"}},
		{name: "AddReplica on a single-region key", setup: setup,
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: keyEnabled, Region: "us-1", Policy: []byte(`{}`)}),
			wantErr: ErrInvalidState, wantMsg: []string{keyEnabled, "not a multi-region key"}},
		{name: "AddReplica in the primary region", setup: setup,
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: regionName, Policy: []byte(`{}`)}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"ReplicaRegion eu-1 is the primary region"}},
		{name: "AddReplica twice", setup: setup,
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "us-1", Policy: []byte(`{}`)}),
			wantErr: ErrAlreadyExists, wantMsg: []string{"already has a replica in us-1"}},
		{name: "AddReplica without a region", setup: setup,
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Policy: []byte(`{}`)}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"needs a ReplicaRegion"}},
		{name: "AddReplica at a replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: mrkB, Region: "ap-1", Policy: []byte(`{}`)}),
			wantErr: ErrInvalidState, wantMsg: []string{mrkB, "needs the primary region", "replica of us-1"}},
		{name: "AddReplica beyond the limit",
			setup: func(h *harness) {
				setup(h)
				for i := range maxReplicas - 1 {
					h.mustApply(wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: fmt.Sprintf("r-%d", i), Policy: []byte(`{}`)}))
				}
			},
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(`{}`)}),
			wantErr: ErrLimitExceeded, wantMsg: []string{"limit is 10"}},
		{name: "AddReplica", setup: setup,
			cmd: wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(`{}`)}),
			check: func(t *testing.T, h *harness, res *Result) {
				if mr := res.Key.GetMultiRegion(); len(mr.GetReplicas()) != 2 || mr.GetSharedSeq() != 3 {
					t.Errorf("%v", mr)
				}
			}},
		{name: "ImportReplicaKey over a single-region key", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ImportReplicaKey {
				op := importB()
				op.Key.KeyId = "mrk-11111111111111111111111111111111"
				return op
			}()),
			check: func(t *testing.T, h *harness, res *Result) {
				if res.Key.GetState() != enabled || res.Key.GetCreationTimeUnixNano() != t0 {
					t.Errorf("%v", res.Key)
				}
			}},
		{name: "ImportReplicaKey with a plain id", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ImportReplicaKey {
				op := importB()
				op.Key.KeyId = keyEnabled
				return op
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{keyEnabled, "is not mrk- followed by 32 hex digits"}},
		{name: "ImportReplicaKey whose primary is this region", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ImportReplicaKey {
				op := importB()
				op.Key.KeyId = "mrk-11111111111111111111111111111111"
				op.Key.MultiRegion.PrimaryRegion = regionName
				return op
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{"names this region eu-1 as its primary"}},
		{name: "ImportReplicaKey with a current version it lacks", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ImportReplicaKey {
				op := importB()
				op.Key.KeyId = "mrk-11111111111111111111111111111111"
				op.Key.MultiRegion.CurrentVersionId = versionID(9)
				return op
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{"current version", "not among the shipped versions"}},
		{name: "ImportReplicaKey again is a shared change", setup: setup,
			cmd: wrap(t0+day, func() *fsmpb.ImportReplicaKey {
				op := importB()
				op.Key.Description = "ignored"
				op.Key.MultiRegion.AppliedSeq = 3
				op.Key.Versions = append(op.Key.Versions, newVersion(2, RotationOnDemand))
				return op
			}()),
			check: func(t *testing.T, h *harness, res *Result) {
				if res.Key.GetDescription() != "test key" || len(res.Key.GetVersions()) != 2 ||
					res.Key.GetMultiRegion().GetAppliedSeq() != 3 {
					t.Errorf("%v", res.Key)
				}
			}},
		{name: "ApplySharedChange on a single-region key", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ApplySharedChange {
				c := changeB(1, 3)
				c.KeyId = keyEnabled
				return c
			}()),
			wantErr: ErrInvalidState, wantMsg: []string{"not a multi-region key"}},
		{name: "ApplySharedChange with epoch 0", setup: setup,
			cmd:     wrap(t0, changeB(0, 3)),
			wantErr: ErrInvalidArgument, wantMsg: []string{"epoch 0"}},
		{name: "ApplySharedChange with seq 0", setup: setup,
			cmd:     wrap(t0, changeB(1, 0)),
			wantErr: ErrInvalidArgument, wantMsg: []string{"seq 0"}},
		{name: "ApplySharedChange naming this region", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ApplySharedChange {
				c := changeB(1, 3)
				c.PrimaryRegion = regionName
				return c
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{"names this region eu-1 as its primary"}},
		{name: "ApplySharedChange with a pending current version", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ApplySharedChange {
				c := changeB(1, 3, 2)
				c.Versions[1].Pending = true
				c.CurrentVersionId = versionID(2)
				return c
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{"is pending"}},
		{name: "ApplySharedChange with an unknown domain key", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ApplySharedChange {
				c := changeB(1, 3)
				c.Versions[0].DomainKeyId = "dk-us-1"
				return c
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{"unknown domain key"}},
		{name: "ApplySharedChange listing the primary as replica", setup: setup,
			cmd: wrap(t0, func() *fsmpb.ApplySharedChange {
				c := changeB(1, 3)
				c.Replicas = []*fsmpb.Replica{{Region: "us-1"}}
				return c
			}()),
			wantErr: ErrInvalidArgument, wantMsg: []string{"listed as its own replica"}},
		{name: "ApplySharedChange stale is not an error", setup: setup,
			cmd: wrap(t0, changeB(1, 1)),
			check: func(t *testing.T, h *harness, res *Result) {
				if res.Key.GetMultiRegion().GetAppliedSeq() != 2 {
					t.Errorf("%v", res.Key.GetMultiRegion())
				}
			}},
		{name: "ApplySharedChange from a lower epoch merges versions only",
			setup: func(h *harness) {
				setup(h)
				h.mustApply(wrap(t0, changeB(3, 1)))
			},
			cmd: wrap(t0, func() *fsmpb.ApplySharedChange {
				c := changeB(2, 9, 7)
				c.RotationEnabled, c.RotationPeriodDays, c.NextRotationTimeUnixNano = true, 90, t0
				return c
			}()),
			check: func(t *testing.T, h *harness, res *Result) {
				k := res.Key
				v, ok := FindVersion(k, versionID(7))
				if !ok || !v.GetUnshipped() || k.GetRotationEnabled() || k.GetMultiRegion().GetEpoch() != 3 ||
					k.GetMultiRegion().GetAppliedSeq() != 1 {
					t.Errorf("%v", k)
				}
				// mrkA (primary here) goes to its replica us-1 too.
				if got := shipIDs(h.f); !slices.Equal(got, []string{mrkA, mrkB}) {
					t.Errorf("to ship: %v", got)
				}
			}},
		{name: "AckReplica above the shared seq", setup: setup,
			cmd:     wrap(t0, &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 1, Seq: 3}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"seq 3 is above the key's shared seq 2"}},
		{name: "AckReplica for an unknown replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.AckReplica{KeyId: mrkA, Region: "ap-1", Epoch: 1, Seq: 1}),
			wantErr: ErrNotFound, wantMsg: []string{"no replica in region \"ap-1\""}},
		{name: "AckReplica at a replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.AckReplica{KeyId: mrkB, Region: "us-1", Epoch: 1, Seq: 1}),
			wantErr: ErrInvalidState, wantMsg: []string{"needs the primary region"}},
		{name: "AckReplica from another epoch is ignored", setup: setup,
			cmd: wrap(t0, &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 7, Seq: 99}),
			check: func(t *testing.T, h *harness, res *Result) {
				if r := res.Key.GetMultiRegion().GetReplicas()[0]; r.GetAckedSeq() != 0 || r.GetState() != replicaCreating {
					t.Errorf("%v", r)
				}
			}},
		{name: "AckReplica", setup: setup,
			cmd: wrap(t0+hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 1, Seq: 2}),
			check: func(t *testing.T, h *harness, res *Result) {
				if r := res.Key.GetMultiRegion().GetReplicas()[0]; r.GetAckedSeq() != 2 || r.GetState() != replicaActive ||
					r.GetAckedTimeUnixNano() != t0+hour {
					t.Errorf("%v", r)
				}
			}},
		{name: "UpdatePrimaryRegion with an older epoch", setup: setup,
			cmd:     wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "us-1", Epoch: 1}),
			wantErr: ErrInvalidState, wantMsg: []string{"epoch 1 is not above the key's epoch 1"}},
		{name: "UpdatePrimaryRegion to a region without a replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "ap-1", Epoch: 2}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"no replica in ap-1"}},
		{name: "UpdatePrimaryRegion to the primary", setup: setup,
			cmd:     wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: regionName, Epoch: 2}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"already the primary region"}},
		{name: "UpdatePrimaryRegion on a single-region key", setup: setup,
			cmd:     wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: keyEnabled, NewPrimary: "us-1", Epoch: 2}),
			wantErr: ErrInvalidState, wantMsg: []string{"not a multi-region key"}},
		{name: "UpdatePrimaryRegion to a replica still being created", setup: setup,
			cmd:     wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "us-1", Epoch: 2}),
			wantErr: ErrInvalidState, wantMsg: []string{"the replica in us-1 is CREATING", "needs an ACTIVE one"}},
		{name: "UpdatePrimaryRegion demotes", setup: mrkActiveFixture,
			cmd: wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "us-1", Epoch: 2}),
			check: func(t *testing.T, h *harness, res *Result) {
				mr := res.Key.GetMultiRegion()
				if mr.GetPrimaryRegion() != "us-1" || mr.GetEpoch() != 2 || len(mr.GetReplicas()) != 1 ||
					mr.GetReplicas()[0].GetRegion() != regionName || !res.Key.GetVersions()[0].GetUnshipped() {
					t.Errorf("%v", res.Key)
				}
				if r := h.apply(wrap(t0, &fsmpb.RotateKey{KeyId: mrkA, Version: newVersion(3, RotationOnDemand)})); r.Err == nil {
					t.Error("a demoted primary rotates")
				}
			}},
		{name: "UpdatePrimaryRegion promotes a replica", setup: setup,
			cmd: wrap(t0, &fsmpb.UpdatePrimaryRegion{KeyId: mrkB, NewPrimary: regionName, Epoch: 5, Forced: true}),
			check: func(t *testing.T, h *harness, res *Result) {
				mr := res.Key.GetMultiRegion()
				if mr.GetPrimaryRegion() != regionName || mr.GetEpoch() != 5 || mr.GetSharedSeq() != 1 ||
					len(mr.GetReplicas()) != 1 || mr.GetReplicas()[0].GetRegion() != "us-1" {
					t.Errorf("%v", mr)
				}
			}},
		{name: "RotateKey at a replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.RotateKey{KeyId: mrkB, Version: newVersion(3, RotationOnDemand)}),
			wantErr: ErrInvalidState, wantMsg: []string{mrkB, "only allowed in its primary region us-1"}},
		{name: "EnableKeyRotation at a replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.SetKeyRotation{KeyId: mrkB, Enabled: true, RotationPeriodDays: 90}),
			wantErr: ErrInvalidState, wantMsg: []string{"only allowed in its primary region"}},
		{name: "RemoveReplica at a replica", setup: setup,
			cmd:     wrap(t0, &fsmpb.RemoveReplica{KeyId: mrkB, Region: "us-1"}),
			wantErr: ErrInvalidState, wantMsg: []string{"needs the primary region"}},
		{name: "MergeKeyVersions without versions", setup: setup,
			cmd:     wrap(t0, &fsmpb.MergeKeyVersions{KeyId: mrkA}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"carries no key versions"}},
		{name: "MergeKeyVersions with a repeated version", setup: setup,
			cmd: wrap(t0, &fsmpb.MergeKeyVersions{KeyId: mrkA,
				Versions: []*fsmpb.KeyVersion{newVersion(4, ""), newVersion(4, "")}}),
			wantErr: ErrInvalidArgument, wantMsg: []string{"appears twice"}},
		{name: "MergeKeyVersions at the primary", setup: setup,
			cmd: wrap(t0, &fsmpb.MergeKeyVersions{KeyId: mrkA, Versions: []*fsmpb.KeyVersion{newVersion(4, ""), newVersion(1, "")}}),
			check: func(t *testing.T, h *harness, res *Result) {
				k := res.Key
				if len(k.GetVersions()) != 2 || k.GetMultiRegion().GetSharedSeq() != 3 ||
					!bytes.Equal(CurrentVersion(k).GetVersionId(), versionID(1)) {
					t.Errorf("%v", k)
				}
			}},
	}
	runApplyCases(t, cases)
}

func TestMRKRestoreRejectsBrokenState(t *testing.T) {
	h := newHarness(t)
	mrkFixture(h)
	good := snapshotBytes(t, h.f)
	if err := New(Config{}).Restore(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	region := marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: h.f.Region()}})
	dk := marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: h.f.DomainKeys()[0]}})
	keyRecord := func(change func(k *fsmpb.Key)) []byte {
		k := proto.Clone(h.key(mrkA)).(*fsmpb.Key)
		change(k)
		return marshalRecord(t, &fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: k}})
	}
	for name, tc := range map[string]struct {
		version uint32
		key     []byte
		msg     string
	}{
		"multi-region key in version 2": {2, keyRecord(func(*fsmpb.Key) {}), "holds no multi-region key"},
		"mrk id without the record":     {3, keyRecord(func(k *fsmpb.Key) { k.MultiRegion = nil }), "no multi-region record"},
		"record on a plain id":          {3, keyRecord(func(k *fsmpb.Key) { k.KeyId = "plain" }), "lacks a multi-region id"},
		"pending current version": {3, keyRecord(func(k *fsmpb.Key) { k.Versions[0].Pending = true }),
			"missing or pending"},
		"ack above the shared seq": {3, keyRecord(func(k *fsmpb.Key) { k.MultiRegion.Replicas[0].AckedSeq = 9 }),
			"above shared seq"},
		"replica pending replica deletion": {3, keyRecord(func(k *fsmpb.Key) {
			k.MultiRegion.PrimaryRegion = "us-1"
			k.MultiRegion.Replicas = nil
			k.State = pendingReplicaDeletion
		}), "pending replica deletion"},
	} {
		t.Run(name, func(t *testing.T) {
			f := New(Config{})
			err := f.Restore(bytes.NewReader(encodeStreamVersion(tc.version, 1, region, dk, tc.key)))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.msg)) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

func replicaOf(k *fsmpb.Key, region string) *fsmpb.Replica {
	replicas := k.GetMultiRegion().GetReplicas()
	if i := replicaIndex(replicas, region); i >= 0 {
		return replicas[i]
	}
	return nil
}

// TestMRKReplicaOwnProperties: AddReplica carries the replica region's own
// policy, description and tags on the CREATING replica until an ack shows
// the replica exists.
func TestMRKReplicaOwnProperties(t *testing.T) {
	addAP := func(h *harness) {
		mrkFixture(h)
		h.mustApply(wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(testPolicy),
			Description: "ap's own", Tags: map[string]string{"team": "ap", "cost": "7"}}))
	}
	kept := func(t *testing.T, rep *fsmpb.Replica) {
		t.Helper()
		if string(rep.GetPolicy()) != testPolicy || rep.GetDescription() != "ap's own" ||
			len(rep.GetTags()) != 2 || rep.GetTags()["team"] != "ap" || rep.GetTags()["cost"] != "7" {
			t.Errorf("replica's own properties %v", rep)
		}
	}
	cleared := func(t *testing.T, rep *fsmpb.Replica) {
		t.Helper()
		if rep.GetPolicy() != nil || rep.GetDescription() != "" || rep.GetTags() != nil {
			t.Errorf("replica's own properties not cleared: %v", rep)
		}
	}
	untouched := func(t *testing.T, h *harness, k *fsmpb.Key) {
		t.Helper()
		// The primary's own properties are not the replica's.
		if k.GetDescription() != "test key" || len(k.GetTags()) != 0 || len(k.GetPolicy()) != 0 {
			t.Errorf("primary's own properties changed: %v", k)
		}
		// The other replica, still CREATING, keeps its policy.
		if us := replicaOf(k, "us-1"); us.GetState() != replicaCreating || string(us.GetPolicy()) != `{}` {
			t.Errorf("us-1 replica %v", us)
		}
		checkMRKInvariants(t, h.f)
	}
	runApplyCases(t, []applyCase{
		{name: "AddReplica without a policy", setup: mrkFixture,
			cmd:     wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Description: "d", Tags: map[string]string{"a": "b"}}),
			wantErr: ErrInvalidArgument, wantMsg: []string{mrkA, "ReplicateKey needs the replica's policy"}},
		{name: "AddReplica with a policy, description and tags", setup: mrkFixture,
			cmd: wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(testPolicy),
				Description: "ap's own", Tags: map[string]string{"team": "ap", "cost": "7"}}),
			check: func(t *testing.T, h *harness, res *Result) {
				for _, k := range []*fsmpb.Key{res.Key, h.key(mrkA)} {
					rep := replicaOf(k, "ap-1")
					if rep.GetState() != replicaCreating || rep.GetAckedSeq() != 0 {
						t.Errorf("replica %v", rep)
					}
					kept(t, rep)
					untouched(t, h, k)
				}
			}},
		{name: "AddReplica with a policy only", setup: mrkFixture,
			cmd: wrap(t0, &fsmpb.AddReplica{KeyId: mrkA, Region: "ap-1", Policy: []byte(testPolicy)}),
			check: func(t *testing.T, h *harness, res *Result) {
				if rep := replicaOf(res.Key, "ap-1"); string(rep.GetPolicy()) != testPolicy || rep.GetDescription() != "" || len(rep.GetTags()) != 0 {
					t.Errorf("replica %v", rep)
				}
			}},
		{name: "AckReplica at seq 0 keeps them", setup: addAP,
			cmd: wrap(t0+hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "ap-1", Epoch: 1, LastError: "unreachable"}),
			check: func(t *testing.T, h *harness, res *Result) {
				rep := replicaOf(res.Key, "ap-1")
				if rep.GetState() != replicaCreating || rep.GetLastError() != "unreachable" {
					t.Errorf("replica %v", rep)
				}
				kept(t, rep)
			}},
		{name: "AckReplica from another epoch keeps them", setup: addAP,
			cmd: wrap(t0+hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "ap-1", Epoch: 2, Seq: 3}),
			check: func(t *testing.T, h *harness, res *Result) {
				rep := replicaOf(h.key(mrkA), "ap-1")
				if rep.GetState() != replicaCreating {
					t.Errorf("replica %v", rep)
				}
				kept(t, rep)
			}},
		{name: "AckReplica with seq > 0 clears them", setup: addAP,
			cmd: wrap(t0+hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "ap-1", Epoch: 1, Seq: 3}),
			check: func(t *testing.T, h *harness, res *Result) {
				for _, k := range []*fsmpb.Key{res.Key, h.key(mrkA)} {
					rep := replicaOf(k, "ap-1")
					if rep.GetState() != replicaActive || rep.GetAckedSeq() != 3 {
						t.Errorf("replica %v", rep)
					}
					cleared(t, rep)
					untouched(t, h, k)
				}
			}},
		{name: "AckReplica with a lower seq > 0 clears them", setup: addAP,
			cmd: wrap(t0+hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "ap-1", Epoch: 1, Seq: 1}),
			check: func(t *testing.T, h *harness, res *Result) {
				rep := replicaOf(res.Key, "ap-1")
				if rep.GetState() != replicaActive {
					t.Errorf("replica %v", rep)
				}
				cleared(t, rep)
			}},
		{name: "AckReplica reporting deletion clears them", setup: addAP,
			cmd: wrap(t0+hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "ap-1", Epoch: 1, Deleting: true}),
			check: func(t *testing.T, h *harness, res *Result) {
				rep := replicaOf(res.Key, "ap-1")
				if rep.GetState() != replicaDeleting {
					t.Errorf("replica %v", rep)
				}
				cleared(t, rep)
			}},
		{name: "they survive a snapshot", setup: addAP,
			cmd: wrap(t0+hour, &fsmpb.UpdateKeyDescription{KeyId: mrkA, Description: "primary's"}),
			check: func(t *testing.T, h *harness, res *Result) {
				restored := New(Config{})
				if err := restored.Restore(bytes.NewReader(snapshotBytes(t, h.f))); err != nil {
					t.Fatal(err)
				}
				k, _ := restored.Key(mrkA)
				rep := replicaOf(k, "ap-1")
				kept(t, rep)
				if !proto.Equal(rep, replicaOf(h.key(mrkA), "ap-1")) {
					t.Errorf("restored replica %v", rep)
				}
			}},
	})
}

// TestMRKBehindSince follows one primary's replicas through a sequence of
// commands: behind_since is the command time at which a replica fell behind
// the shared seq, kept while it stays behind, 0 once an ack catches it up.
func TestMRKBehindSince(t *testing.T) {
	at := func(hours int64) int64 { return t0 + hours*hour }
	ack := func(region string, seq uint64) *fsmpb.AckReplica {
		return &fsmpb.AckReplica{KeyId: mrkA, Region: region, Epoch: 1, Seq: seq}
	}
	add := func(region string) *fsmpb.AddReplica {
		return &fsmpb.AddReplica{KeyId: mrkA, Region: region, Policy: []byte(`{}`)}
	}
	steps := []struct {
		name      string
		op        proto.Message
		sharedSeq uint64
		want      map[string]int64 // region → behind_since, for the replicas the step checks
	}{
		{"AddReplica puts the new replica behind", add("us-1"), 2, map[string]int64{"us-1": at(1)}},
		{"a second AddReplica", add("ap-1"), 3, map[string]int64{"us-1": at(1), "ap-1": at(2)}},
		{"an ack at the shared seq catches up", ack("us-1", 3), 3, map[string]int64{"us-1": 0, "ap-1": at(2)}},
		{"a rotation puts a caught-up replica behind", rotation(2), 4, map[string]int64{"us-1": at(4), "ap-1": at(2)}},
		{"an independent change keeps it", &fsmpb.UpdateKeyDescription{KeyId: mrkA, Description: "x"}, 4,
			map[string]int64{"us-1": at(4), "ap-1": at(2)}},
		{"a shared change keeps it", &fsmpb.SetKeyRotation{KeyId: mrkA, Enabled: true, RotationPeriodDays: 90}, 5,
			map[string]int64{"us-1": at(4), "ap-1": at(2)}},
		{"an ack below the shared seq keeps it", ack("us-1", 4), 5, map[string]int64{"us-1": at(4), "ap-1": at(2)}},
		{"a repeated ack keeps it", ack("us-1", 4), 5, map[string]int64{"us-1": at(4), "ap-1": at(2)}},
		{"an ack of another epoch keeps it", &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 9, Seq: 5}, 5,
			map[string]int64{"us-1": at(4), "ap-1": at(2)}},
		{"an ack at the shared seq resets it", ack("us-1", 5), 5, map[string]int64{"us-1": 0, "ap-1": at(2)}},
		// ap-1's ack releases the pending version, which moves the seq: the
		// replica that was caught up falls behind now.
		{"a released rotation puts the others behind", ack("ap-1", 5), 6, map[string]int64{"us-1": at(11)}},
		{"the other catches up", ack("ap-1", 6), 6, map[string]int64{"ap-1": 0, "us-1": at(11)}},
		{"all caught up", ack("us-1", 6), 6, map[string]int64{"us-1": 0, "ap-1": 0}},
		{"merged versions put every replica behind",
			&fsmpb.MergeKeyVersions{KeyId: mrkA, Versions: []*fsmpb.KeyVersion{newVersion(9, "")}}, 7,
			map[string]int64{"us-1": at(14), "ap-1": at(14)}},
		{"removing a replica keeps the other's", &fsmpb.RemoveReplica{KeyId: mrkA, Region: "ap-1"}, 8,
			map[string]int64{"us-1": at(14)}},
		{"the last ack", ack("us-1", 8), 8, map[string]int64{"us-1": 0}},
	}
	h := newHarness(t)
	h.mustApply(wrap(at(0), &fsmpb.CreateKey{Key: newMRK(mrkA)}))
	for i, step := range steps {
		h.mustApply(wrap(at(int64(i+1)), step.op)) // step n at t0 + n hours
		if got := h.key(mrkA).GetMultiRegion().GetSharedSeq(); got != step.sharedSeq {
			t.Fatalf("step %d, %s: shared seq %d, want %d", i+1, step.name, got, step.sharedSeq)
		}
		for region, want := range step.want {
			if got := replicaOf(h.key(mrkA), region).GetBehindSinceUnixNano(); got != want {
				t.Errorf("step %d, %s: %s behind since %+dh, want %+dh", i+1, step.name, region, (got-t0)/hour, (want-t0)/hour)
			}
		}
		checkMRKInvariants(t, h.f)
	}
	if rep := replicaOf(h.key(mrkA), "ap-1"); rep != nil {
		t.Errorf("removed replica %v", rep)
	}
}

// TestMRKBehindSinceAcrossPrimaries: a promoted primary starts every cursor
// at 0, so its replicas are behind since the promotion; a region that is not
// the primary keeps the replica list as shipped.
func TestMRKBehindSinceAcrossPrimaries(t *testing.T) {
	h := newHarness(t)
	mrkFixture(h) // mrkB: a replica here of us-1
	if rep := replicaOf(h.key(mrkB), regionName); rep.GetBehindSinceUnixNano() != 0 {
		t.Fatalf("replica list at a replica %v", rep)
	}
	shipped := changeB(1, 3)
	shipped.Replicas = []*fsmpb.Replica{{Region: regionName, State: replicaActive, AckedSeq: 2, BehindSinceUnixNano: t0 - hour}}
	h.mustApply(wrap(t0+hour, shipped))
	if rep := replicaOf(h.key(mrkB), regionName); rep.GetBehindSinceUnixNano() != t0-hour {
		t.Errorf("a replica changed the shipped replica list: %v", rep)
	}

	promoted := h.mustApply(wrap(t0+2*hour, &fsmpb.UpdatePrimaryRegion{KeyId: mrkB, NewPrimary: regionName, Epoch: 2, Forced: true})).Key
	if rep := replicaOf(promoted, "us-1"); rep.GetAckedSeq() != 0 || rep.GetBehindSinceUnixNano() != t0+2*hour {
		t.Errorf("after promotion: %v", rep)
	}
	h.mustApply(wrap(t0+3*hour, &fsmpb.AckReplica{KeyId: mrkB, Region: "us-1", Epoch: 2, Seq: 1}))
	if rep := replicaOf(h.key(mrkB), "us-1"); rep.GetBehindSinceUnixNano() != 0 {
		t.Errorf("after the ack: %v", rep)
	}

	// mrkA, demoted here: the new primary's view of its replicas is its own.
	h.mustApply(wrap(t0+4*hour, &fsmpb.AckReplica{KeyId: mrkA, Region: "us-1", Epoch: 1, Seq: 2}))
	demoted := h.mustApply(wrap(t0+4*hour, &fsmpb.UpdatePrimaryRegion{KeyId: mrkA, NewPrimary: "us-1", Epoch: 2})).Key
	for _, rep := range demoted.GetMultiRegion().GetReplicas() {
		if rep.GetBehindSinceUnixNano() != 0 {
			t.Errorf("demoted key's replica %v", rep)
		}
	}
	checkMRKInvariants(t, h.f)
}

// TestMRKBehindSinceWithReplication: in a world that replicates, a rotation
// puts both replicas behind at its time, a partition keeps the cut-off one
// behind since then, and once everything is shipped no replica is behind.
func TestMRKBehindSinceWithReplication(t *testing.T) {
	w := threeRegions(t)
	behind := func(region string) int64 { return replicaOf(w.key("us-1", mrkA), region).GetBehindSinceUnixNano() }
	for _, region := range []string{"eu-1", "ap-1"} {
		if b := behind(region); b != 0 {
			t.Fatalf("%s behind since %d after sync", region, b)
		}
	}
	w.rotateAt("us-1", 2)
	rotated := w.now
	if behind("eu-1") != rotated || behind("ap-1") != rotated {
		t.Fatalf("after the rotation at %d: eu-1 %d, ap-1 %d", rotated, behind("eu-1"), behind("ap-1"))
	}
	w.partition("ap-1", false, "us-1", "eu-1")
	w.sync()
	if behind("eu-1") != 0 || behind("ap-1") != rotated {
		t.Errorf("partitioned: eu-1 %d, ap-1 %d (rotated at %d)", behind("eu-1"), behind("ap-1"), rotated)
	}
	w.partition("ap-1", true, "us-1", "eu-1")
	w.sync()
	if behind("eu-1") != 0 || behind("ap-1") != 0 {
		t.Errorf("healed: eu-1 %d, ap-1 %d", behind("eu-1"), behind("ap-1"))
	}
}

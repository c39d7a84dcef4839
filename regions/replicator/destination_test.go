package replicator

import (
	"errors"
	"testing"
	"time"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func primaryKey(id string, shared uint64, replicas ...*fsmpb.Replica) *fsmpb.Key {
	return &fsmpb.Key{KeyId: id, MultiRegion: &fsmpb.MultiRegion{PrimaryRegion: "eu-1", Epoch: 1, SharedSeq: shared, Replicas: replicas}}
}

func TestDestinationClaim(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDestination("us-1")
	behind := primaryKey("mrk-a", 3, &fsmpb.Replica{Region: "us-1", AckedSeq: 1, State: fsmpb.ReplicaState_REPLICA_STATE_ACTIVE})
	deleting := primaryKey("mrk-b", 2, &fsmpb.Replica{Region: "us-1", AckedSeq: 2, State: fsmpb.ReplicaState_REPLICA_STATE_DELETING})
	otherRegion := primaryKey("mrk-c", 2, &fsmpb.Replica{Region: "ap-1", AckedSeq: 0})
	keys := []*fsmpb.Key{behind, deleting, otherRegion}

	work := d.claim(keys, "eu-1", now, time.Minute, 10)
	if len(work) != 2 || work[0].key != behind || work[1].key != deleting {
		t.Fatalf("first claim: %v", work)
	}
	// The same change in flight, and a probe within its period: nothing.
	if again := d.claim(keys, "eu-1", now, time.Minute, 10); len(again) != 0 {
		t.Errorf("claimed again while in flight: %d keys", len(again))
	}
	// A newer change of the key in flight leaves at once.
	newer := primaryKey("mrk-a", 4, behind.MultiRegion.Replicas...)
	if w := d.claim([]*fsmpb.Key{newer}, "eu-1", now, time.Minute, 10); len(w) != 1 {
		t.Errorf("a newer change waited for the one in flight")
	}

	// A failed shipment backs off, doubling, capped.
	d.finish(work, 0, errors.New("unreachable"), now, time.Second)
	if w := d.claim(keys, "eu-1", now, time.Minute, 10); len(w) != 0 {
		t.Error("claimed while backing off")
	}
	if st := d.status(); st.LastError != "unreachable" || st.FailuresInARow != 1 || !st.NextAttemptTime.Equal(now.Add(firstBackoff)) {
		t.Errorf("status after a failure: %+v", st)
	}
	for range 10 {
		d.finish(nil, 0, errors.New("unreachable"), now, time.Second)
	}
	if st := d.status(); st.NextAttemptTime.After(now.Add(time.Second)) {
		t.Errorf("backoff beyond the cap: %v", st.NextAttemptTime.Sub(now))
	}
	d.finish(nil, 1, nil, now, time.Second)
	if st := d.status(); st.FailuresInARow != 0 || !st.LastSuccess.Equal(now) || st.ChangesApplied != 1 {
		t.Errorf("status after a success: %+v", st)
	}
}

func TestDestinationBatchLimitAndInFlightSlots(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDestination("us-1")
	var keys []*fsmpb.Key
	for i := range 5 * maxInFlight {
		keys = append(keys, primaryKey(string(rune('a'+i)), 1, &fsmpb.Replica{Region: "us-1"}))
	}
	if w := d.claim(keys, "eu-1", now, time.Minute, 3); len(w) != 3 {
		t.Fatalf("claimed %d keys; the batch limit is 3", len(w))
	}
	for i := 1; i < maxInFlight; i++ {
		if w := d.claim(keys, "eu-1", now, time.Minute, 1); len(w) != 1 {
			t.Fatalf("slot %d: claimed %d", i, len(w))
		}
	}
	if w := d.claim(keys, "eu-1", now, time.Minute, 1); len(w) != 0 {
		t.Errorf("claimed beyond %d shipments in flight", maxInFlight)
	}
}

func TestDestinationForgetsKeysWithoutWork(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDestination("us-1")
	deleting := func(id string) *fsmpb.Key {
		return primaryKey(id, 2, &fsmpb.Replica{Region: "us-1", AckedSeq: 2, State: fsmpb.ReplicaState_REPLICA_STATE_DELETING})
	}
	shippedBack := &fsmpb.Key{KeyId: "mrk-r", MultiRegion: &fsmpb.MultiRegion{PrimaryRegion: "us-1", Epoch: 1}}
	keys := []*fsmpb.Key{deleting("mrk-a"), deleting("mrk-b"), shippedBack}
	work := d.claim(keys, "eu-1", now, time.Minute, 10)
	d.finish(work, len(work), nil, now, time.Second)
	d.needFull("mrk-a", true)
	d.needFull("mrk-b", true)

	d.forget([]*fsmpb.Key{deleting("mrk-b")})
	if _, ok := d.probed["mrk-a"]; ok {
		t.Error("kept the probe mark of a key without work")
	}
	if d.fullNext["mrk-a"] {
		t.Error("kept the full-shipment mark of a key without work")
	}
	if _, ok := d.merged["mrk-r"]; ok {
		t.Error("kept the ship-back mark of a key without work")
	}
	if _, ok := d.probed["mrk-b"]; !ok || !d.fullNext["mrk-b"] {
		t.Error("dropped the marks of a key that still has work")
	}
	// The kept probe mark still paces probes of the key with work.
	if w := d.claim([]*fsmpb.Key{deleting("mrk-b")}, "eu-1", now, time.Minute, 10); len(w) != 0 {
		t.Errorf("probed again within the period after forget: %d keys", len(w))
	}
}

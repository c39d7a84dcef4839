package replicator

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Retry pacing after a failed shipment to a region; the cap is
// Config.MaxBackoff.
const (
	firstBackoff = 50 * time.Millisecond
	// mergeResend: a region that shipped versions back to the primary waits
	// this long for the primary's next change (which clears the marks)
	// before shipping them again.
	mergeResend = 2 * time.Second
)

// destination is the replicator's in-memory bookkeeping for one region:
// what is in flight, when to retry, and what to report. Cursors themselves
// live in replicated state.
type destination struct {
	name string

	mu          sync.Mutex
	inFlight    int
	shipping    map[string]uint64    // key → shared seq in flight (at the primary)
	merged      map[string]mergeMark // key → last versions shipped back
	probed      map[string]time.Time // key → last probe of a deleting replica
	fullNext    map[string]bool      // key → ship every version's material
	retry       retryPacer           // failed shipments in a row, and when to try again
	lastError   string
	lastErrorAt time.Time
	lastOK      time.Time
	shipped     uint64 // changes applied by the region
}

type mergeMark struct {
	epoch    uint64
	versions int
	deleting bool
	at       time.Time
}

// DestinationStatus is one destination region as the replicator sees it.
type DestinationStatus struct {
	Region          string
	LastSuccess     time.Time
	LastError       string
	LastErrorTime   time.Time
	InFlight        int
	ChangesApplied  uint64
	FailuresInARow  int
	NextAttemptTime time.Time
}

func newDestination(name string) *destination {
	return &destination{
		name:     name,
		shipping: make(map[string]uint64),
		merged:   make(map[string]mergeMark),
		probed:   make(map[string]time.Time),
		fullNext: make(map[string]bool),
	}
}

// item is one key of a shipment, as the key stood when it was claimed.
type item struct {
	key     *fsmpb.Key
	primary bool
	replica *fsmpb.Replica // at the primary: the destination's entry
	full    bool           // ship every version's material
}

// claim picks the keys to ship now, or nothing while backing off or with
// every in-flight slot taken. A key is skipped while the same change of it
// is in flight, a caught-up replica pending deletion is probed only every
// probeEvery, and versions shipped back are not resent for mergeResend.
func (d *destination) claim(keys []*fsmpb.Key, here string, now time.Time, probeEvery time.Duration, maxBatch int) []item {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.retry.ready(now) || d.inFlight >= maxInFlight {
		return nil
	}
	var work []item
	for _, k := range keys {
		if len(work) == maxBatch {
			break
		}
		id, mr := k.GetKeyId(), k.GetMultiRegion()
		if mr.GetPrimaryRegion() != here {
			unshipped := 0
			for _, v := range k.GetVersions() {
				if v.GetUnshipped() {
					unshipped++
				}
			}
			deleting := k.GetState() == fsmpb.KeyState_KEY_STATE_PENDING_DELETION
			m, ok := d.merged[id]
			if ok && m.epoch == mr.GetEpoch() && m.versions == unshipped && m.deleting == deleting && now.Sub(m.at) < mergeResend {
				continue
			}
			d.merged[id] = mergeMark{epoch: mr.GetEpoch(), versions: unshipped, deleting: deleting, at: now}
			work = append(work, item{key: k, full: true})
			continue
		}
		i := slices.IndexFunc(mr.GetReplicas(), func(r *fsmpb.Replica) bool { return r.GetRegion() == d.name })
		if i < 0 {
			continue
		}
		rep := mr.GetReplicas()[i]
		if rep.GetAckedSeq() >= mr.GetSharedSeq() {
			// Caught up and listed: a replica pending deletion, probed to
			// learn when its key is gone.
			if now.Sub(d.probed[id]) < probeEvery {
				continue
			}
			d.probed[id] = now
		}
		if seq, ok := d.shipping[id]; ok && seq >= mr.GetSharedSeq() {
			continue
		}
		d.shipping[id] = mr.GetSharedSeq()
		work = append(work, item{key: k, primary: true, replica: rep, full: d.fullNext[id]})
	}
	if len(work) > 0 {
		d.inFlight++
	}
	return work
}

// finish records a shipment's outcome; err is the shipment's own failure
// (unreachable region, refused batch), not a key's.
func (d *destination) finish(work []item, applied int, err error, now time.Time, maxBackoff time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight--
	for _, it := range work {
		id := it.key.GetKeyId()
		if it.primary && d.shipping[id] <= it.key.GetMultiRegion().GetSharedSeq() {
			delete(d.shipping, id)
		}
		if err != nil && !it.primary {
			delete(d.merged, id)
		}
	}
	d.shipped += uint64(applied)
	if err == nil {
		d.retry.succeeded()
		d.lastOK = now
		return
	}
	d.retry.failed(now, maxBackoff)
	d.lastError, d.lastErrorAt = err.Error(), now
}

// forget drops the marks of keys not in work, the keys with work for this
// region now (the others are caught up, deleted, or no longer replicated
// there), so a long-running leader's bookkeeping follows the keys in
// flight, not every key it ever shipped. In-flight entries are left to
// finish.
func (d *destination) forget(work []*fsmpb.Key) {
	listed := make(map[string]bool, len(work))
	for _, k := range work {
		listed[k.GetKeyId()] = true
	}
	unlisted := func(id string) bool { return !listed[id] }
	d.mu.Lock()
	defer d.mu.Unlock()
	maps.DeleteFunc(d.merged, func(id string, _ mergeMark) bool { return unlisted(id) })
	maps.DeleteFunc(d.probed, func(id string, _ time.Time) bool { return unlisted(id) })
	maps.DeleteFunc(d.fullNext, func(id string, _ bool) bool { return unlisted(id) })
}

// needFull marks key to ship with every version's material next time (the
// region lacks one it was assumed to hold), or clears the mark.
func (d *destination) needFull(keyID string, full bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if full {
		d.fullNext[keyID] = true
	} else {
		delete(d.fullNext, keyID)
	}
}

func (d *destination) status() DestinationStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return DestinationStatus{
		Region: d.name, LastSuccess: d.lastOK, LastError: d.lastError, LastErrorTime: d.lastErrorAt,
		InFlight: d.inFlight, ChangesApplied: d.shipped, FailuresInARow: d.retry.failures, NextAttemptTime: d.retry.next,
	}
}

func sortStatus(s []DestinationStatus) {
	slices.SortFunc(s, func(a, b DestinationStatus) int { return cmp.Compare(a.Region, b.Region) })
}

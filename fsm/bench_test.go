package fsm

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// populated returns an FSM with n enabled keys and their ids.
func populated(b *testing.B, n int) (*harness, []string) {
	b.Helper()
	h := newEmptyHarness(b)
	h.mustApply(initRegion(regionName, dk1, node1))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i*2654435761%(1<<32))
		h.mustApply(wrap(t0, &fsmpb.CreateKey{Key: newKey(ids[i])}))
	}
	return h, ids
}

func rotateCommand(b *testing.B, keyID string, seq uint64) []byte {
	id := make([]byte, versionIDLen)
	binary.BigEndian.PutUint64(id[8:], seq+2) // 1 is the first version's seed pattern
	data, err := Encode(wrap(t0+int64(seq), &fsmpb.RotateKey{KeyId: keyID, Version: &fsmpb.KeyVersion{
		VersionId: id, KeyToken: make([]byte, 40), DomainKeyId: dk1, RotationType: RotationOnDemand,
	}}))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkKeyParallel measures the data plane's lookup while a writer
// applies commands as fast as it can.
func BenchmarkKeyParallel(b *testing.B) {
	h, ids := populated(b, 10_000)
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data, _ := Encode(wrap(t0+int64(i), &fsmpb.UpdateKeyDescription{KeyId: ids[i%uint64(len(ids))], Description: "d"}))
			h.f.Apply(uint64(1_000_000)+i, data)
			writes.Add(1)
		}
	})
	b.ResetTimer()
	var seq atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(7919)
		for pb.Next() {
			i++
			if _, ok := h.f.Key(ids[i%uint64(len(ids))]); !ok {
				b.Error("missing key")
			}
		}
	})
	b.StopTimer()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(writes.Load())/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkApplyRotateKey measures Apply of RotateKey, decode included: a
// clone of the key, the append, and the table update. Keys are renewed every
// so often so they keep the handful of versions real keys have.
func BenchmarkApplyRotateKey(b *testing.B) {
	const keys, batch = 1000, 10_000
	var h *harness
	var ids []string
	var entries [][]byte
	i := 0
	for b.Loop() {
		if i%batch == 0 {
			b.StopTimer()
			h, ids = populated(b, keys)
			entries = entries[:0]
			for j := range batch {
				entries = append(entries, rotateCommand(b, ids[j%keys], uint64(j)))
			}
			b.StartTimer()
		}
		res := h.f.Apply(uint64(keys+10+i), entries[i%batch]).(*Result)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		i++
	}
}

// BenchmarkSnapshot measures Snapshot() on the apply goroutine (the part
// that blocks applies) and, separately, writing it.
func BenchmarkSnapshot(b *testing.B) {
	h, _ := populated(b, 100_000)
	b.Run("take", func(b *testing.B) {
		for b.Loop() {
			s, _ := h.f.Snapshot()
			s.Release()
		}
	})
	b.Run("write", func(b *testing.B) {
		s, _ := h.f.Snapshot()
		defer s.Release()
		for b.Loop() {
			if _, err := s.WriteTo(io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkApplyCreateKey measures Apply of CreateKey, decode included, into
// a region that already holds a few thousand keys: the write path whose
// throughput bounds how fast a region can create keys.
func BenchmarkApplyCreateKey(b *testing.B) {
	const batch = 10_000
	var h *harness
	var entries [][]byte
	i := 0
	for b.Loop() {
		if i%batch == 0 {
			b.StopTimer()
			h, _ = populated(b, 1000)
			entries = entries[:0]
			for j := range batch {
				k := newKey(fmt.Sprintf("%08x-1111-4000-8000-000000000000", (i+j)*2654435761%(1<<32)))
				k.Policy = benchPolicy
				data, err := Encode(wrap(t0+int64(j), &fsmpb.CreateKey{Key: k}))
				if err != nil {
					b.Fatal(err)
				}
				entries = append(entries, data)
			}
			b.StartTimer()
		}
		res := h.f.Apply(uint64(1000+10+i), entries[i%batch]).(*Result)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		i++
	}
}

// benchPolicy is the size of AWS's default key policy.
var benchPolicy = []byte(`{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions",` +
	`"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`)

// BenchmarkRecordEvent measures what the management events add to every
// key command's apply, with the ring full so each push also drops one.
func BenchmarkRecordEvent(b *testing.B) {
	s := newState()
	cmd := wrap(t0, &fsmpb.CreateKey{Key: newKey(keyNew)})
	res := &Result{}
	for i := range MaxManagementEvents {
		s.recordEvent(uint64(i+1), cmd, res)
	}
	index := uint64(MaxManagementEvents)
	for b.Loop() {
		index++
		s.recordEvent(index, cmd, res)
	}
}

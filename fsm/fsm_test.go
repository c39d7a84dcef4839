package fsm

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func TestApplyPanicsOnUndecodableEntry(t *testing.T) {
	badUTF8 := protowire.AppendTag(nil, 2, protowire.BytesType) // principal
	badUTF8 = protowire.AppendBytes(badUTF8, []byte{0xff, 0xfe})
	for name, data := range map[string][]byte{
		"truncated length": {0x52, 0x05, 0x0a},
		"field number 0":   {0x00, 0x01},
		"invalid UTF-8":    badUTF8,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			before := snapshotBytes(t, h.f)
			msg := applyExpectingPanic(t, h.f, 99, data)
			if !strings.Contains(msg, "undecodable log entry at index 99") {
				t.Errorf("panic %q", msg)
			}
			if !bytes.Equal(before, snapshotBytes(t, h.f)) {
				t.Error("a panicking entry changed the state or the index")
			}
		})
	}
}

func TestApplyPanicsOnUnknownOperation(t *testing.T) {
	// What a newer version's command looks like to this one: a time and a
	// oneof field it has never heard of.
	data := protowire.AppendTag(nil, 1, protowire.VarintType)
	data = protowire.AppendVarint(data, uint64(t0))
	data = protowire.AppendTag(data, 99, protowire.BytesType)
	data = protowire.AppendBytes(data, []byte{0x0a, 0x01, 'x'})
	msg := applyExpectingPanic(t, New(Config{}), 5, data)
	if !strings.Contains(msg, "operation this version does not know") {
		t.Errorf("panic %q", msg)
	}
}

func applyExpectingPanic(t *testing.T, f *FSM, index uint64, data []byte) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Apply did not panic")
		}
		msg = fmt.Sprint(r)
	}()
	f.Apply(index, data)
	return ""
}

func TestApplyCommandWithoutOperationIsRejected(t *testing.T) {
	h := newHarness(t)
	before := stateBytes(t, h.f)
	checkRejection(t, h.apply(&fsmpb.Command{TimeUnixNano: t0}), ErrInvalidArgument, "command carries no operation")
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("state changed")
	}
	if h.f.AppliedIndex() != h.index {
		t.Errorf("AppliedIndex %d, want %d: rejected commands still count", h.f.AppliedIndex(), h.index)
	}
}

func TestEncodeIsDeterministic(t *testing.T) {
	tags := tagsN(40, "tag")
	first, err := Encode(wrap(t0, &fsmpb.TagResource{KeyId: keyEnabled, Tags: tags}))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := Encode(wrap(t0, &fsmpb.TagResource{KeyId: keyEnabled, Tags: tags}))
		if !bytes.Equal(first, again) {
			t.Fatal("two encodings of one command differ")
		}
	}
}

func TestListKeys(t *testing.T) {
	h := newEmptyHarness(t)
	h.mustApply(initRegion(regionName, dk1, node1))
	for i := range 7 {
		id := fmt.Sprintf("k-%d", (i*3)%7) // created out of order
		h.mustApply(wrap(t0, &fsmpb.CreateKey{Key: newKey(id)}))
	}
	list := func(after string, limit int) string {
		keys, truncated := h.f.ListKeys(after, limit)
		var s []string
		for _, k := range keys {
			s = append(s, k.GetKeyId())
		}
		return fmt.Sprintf("%s %v", strings.Join(s, ","), truncated)
	}
	for _, tc := range []struct {
		after string
		limit int
		want  string
	}{
		{"", 0, "k-0,k-1,k-2,k-3,k-4,k-5,k-6 false"},
		{"", 3, "k-0,k-1,k-2 true"},
		{"k-2", 3, "k-3,k-4,k-5 true"},
		{"k-3", 3, "k-4,k-5,k-6 false"},
		{"k-35", 2, "k-4,k-5 true"}, // after need not be an existing id
		{"k-6", 3, " false"},
		{"", 7, "k-0,k-1,k-2,k-3,k-4,k-5,k-6 false"},
	} {
		if got := list(tc.after, tc.limit); got != tc.want {
			t.Errorf("ListKeys(%q, %d) = %s, want %s", tc.after, tc.limit, got, tc.want)
		}
	}
}

// TestReadersDuringApply runs every reader, and snapshot writing, against a
// stream of applies; under -race it catches any write to a published record.
func TestReadersDuringApply(t *testing.T) {
	f := New(Config{})
	entries := newCommandGen(7).entries(t, 3000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("key-%02d", (i+r)%12)
				if k, ok := f.Key(id); ok {
					_ = CurrentVersion(k).GetKeyToken()
					_, _ = FindVersion(k, versionID(1))
					_, _ = proto.Marshal(k) // what the transport does with Result.Key
				}
				f.ListKeys("", 5)
				f.ListAliases(id, "", 0)
				f.KeysDue(t0 + int64(i)*day)
				f.Nodes()
				f.DomainKeys()
				_ = f.Region().GetName()
				for _, g := range f.Grants(id) {
					_, _ = proto.Marshal(g)
				}
				f.ListGrants(id, "", 3)
				f.ListRetirableGrants("admin", "", 3)
				f.GrantRemoved(fmt.Sprintf("grant-%02d-0", (i+r)%12))
				f.ManagementEvents(f.AppliedIndex()/2, 10)
				if i%50 == 0 {
					snap, _ := f.Snapshot()
					if _, err := snap.WriteTo(io.Discard); err != nil {
						t.Error(err)
					}
					snap.Release()
				}
			}
		})
	}
	for i, data := range entries {
		f.Apply(uint64(i+1), data)
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, f)
}

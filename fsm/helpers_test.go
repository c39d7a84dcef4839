package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// t0 is 2026-01-01T00:00:00Z; fixtures are created then.
const (
	t0   = int64(1_767_225_600) * int64(time.Second)
	hour = int64(time.Hour)
	day  = 24 * hour
)

// Fixture ids: newHarness creates one key in each state and one alias.
const (
	regionName  = "eu-1"
	dk1         = "dk-1"
	node1       = "node-1"
	keyEnabled  = "1234abcd-0000-0000-0000-000000000001"
	keyDisabled = "1234abcd-0000-0000-0000-000000000002"
	keyPending  = "1234abcd-0000-0000-0000-000000000003"
	keyHMAC     = "1234abcd-0000-0000-0000-000000000004"
	keyMissing  = "1234abcd-0000-0000-0000-00000000dead"
	aliasOfKey  = "alias/app"
)

// wrap puts op into a Command at time t, finding the oneof field by the
// operation's message type so tests need no per-type boilerplate.
func wrap(t int64, op proto.Message) *fsmpb.Command {
	c := &fsmpb.Command{TimeUnixNano: t}
	fields := c.ProtoReflect().Descriptor().Oneofs().ByName("op").Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Message().FullName() == op.ProtoReflect().Descriptor().FullName() {
			c.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(op.ProtoReflect()))
			return c
		}
	}
	panic(fmt.Sprintf("%T is not a command operation", op))
}

// versionID returns a deterministic 16-byte version id.
func versionID(seed byte) []byte { return bytes.Repeat([]byte{seed}, versionIDLen) }

func newVersion(seed byte, rotationType string) *fsmpb.KeyVersion {
	return &fsmpb.KeyVersion{
		VersionId:    versionID(seed),
		KeyToken:     []byte("wrapped-token-" + string('a'+seed%26)),
		DomainKeyId:  dk1,
		RotationType: rotationType,
	}
}

func newKey(id string) *fsmpb.Key {
	return &fsmpb.Key{
		KeyId:           id,
		Description:     "test key",
		KeySpec:         "SYMMETRIC_DEFAULT",
		KeyUsage:        "ENCRYPT_DECRYPT",
		ProtectionLevel: "SOFTWARE",
		Origin:          "AWS_KMS",
		Versions:        []*fsmpb.KeyVersion{newVersion(1, "")},
	}
}

type harness struct {
	t     testing.TB
	f     *FSM
	index uint64
}

func newEmptyHarness(t testing.TB) *harness {
	return &harness{t: t, f: New(Config{})}
}

// newHarness returns an FSM with an initialised region, a key in each state,
// an HMAC key and an alias, all created at t0.
func newHarness(t testing.TB) *harness {
	h := newEmptyHarness(t)
	h.mustApply(wrap(t0, &fsmpb.InitRegion{
		Name:      regionName,
		DomainKey: &fsmpb.DomainKey{Id: dk1},
		Node:      &fsmpb.Node{Id: node1, RaftAddr: "10.0.0.1:7000", GrpcAddr: "10.0.0.1:7001"},
	}))
	for _, id := range []string{keyEnabled, keyDisabled, keyPending} {
		h.mustApply(wrap(t0, &fsmpb.CreateKey{Key: newKey(id)}))
	}
	hmac := newKey(keyHMAC)
	hmac.KeySpec, hmac.KeyUsage = "HMAC_256", "GENERATE_VERIFY_MAC"
	h.mustApply(wrap(t0, &fsmpb.CreateKey{Key: hmac}))
	h.mustApply(wrap(t0, &fsmpb.SetKeyEnabled{KeyId: keyDisabled, Enabled: false}))
	h.mustApply(wrap(t0, &fsmpb.ScheduleKeyDeletion{KeyId: keyPending, PendingWindowDays: 7}))
	h.mustApply(wrap(t0, &fsmpb.CreateAlias{AliasName: aliasOfKey, TargetKeyId: keyEnabled}))
	return h
}

func (h *harness) apply(cmd *fsmpb.Command) *Result {
	h.t.Helper()
	data, err := Encode(cmd)
	if err != nil {
		h.t.Fatalf("encode %v: %v", cmd, err)
	}
	h.index++
	res, ok := h.f.Apply(h.index, data).(*Result)
	if !ok {
		h.t.Fatalf("Apply returned %T, want *Result", res)
	}
	return res
}

func (h *harness) mustApply(cmd *fsmpb.Command) *Result {
	h.t.Helper()
	res := h.apply(cmd)
	if res.Err != nil {
		h.t.Fatalf("apply %v: %v", cmd, res.Err)
	}
	return res
}

func (h *harness) key(id string) *fsmpb.Key {
	h.t.Helper()
	k, ok := h.f.Key(id)
	if !ok {
		h.t.Fatalf("key %s missing", id)
	}
	return k
}

// snapshotBytes returns the full snapshot stream.
func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// stateBytes is the snapshot's records without header, trailer and
// management events: the state a rejected command must leave identical,
// although the index moves and the rejection is recorded as an event.
func stateBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	b := snapshotBytes(t, f)
	records := b[snapshotHeaderLen : len(b)-snapshotTrailerLen]
	var out []byte
	for len(records) > 1 {
		n, w := binary.Uvarint(records)
		if w <= 0 || uint64(len(records)-w) < n {
			t.Fatalf("snapshot framing broken at %d bytes from the end", len(records))
		}
		framed, rec := records[:w+int(n)], records[w:w+int(n)]
		records = records[w+int(n):]
		var r fsmpb.SnapshotRecord
		if err := proto.Unmarshal(rec, &r); err != nil {
			t.Fatal(err)
		}
		if _, isEvent := r.Record.(*fsmpb.SnapshotRecord_ManagementEvent); !isEvent {
			out = append(out, framed...)
		}
	}
	return out
}

// checkEvent checks the management event the last applied command recorded,
// or that it recorded none if it is a region or node command.
func checkEvent(t testing.TB, h *harness, cmd *fsmpb.Command, res *Result) {
	t.Helper()
	events := h.f.ManagementEvents(h.index-1, 0)
	if _, records := eventNamesOf(cmd, res); !records {
		if len(events) != 0 {
			t.Errorf("%v recorded events %v", cmd, events)
		}
		return
	}
	if len(events) != 1 {
		t.Fatalf("%d events recorded, want 1: %v", len(events), events)
	}
	ev := events[0]
	if ev.GetIndex() != h.index || ev.GetTimeUnixNano() != cmd.GetTimeUnixNano() ||
		ev.GetPrincipal() != cmd.GetPrincipal() || ev.GetOperation() == "" {
		t.Errorf("event %v for command %v at index %d", ev, cmd, h.index)
	}
	if want := RejectKindName(res.Err); ev.GetErrorKind() != want {
		t.Errorf("event error kind %q, want %q", ev.GetErrorKind(), want)
	}
}

// applyCase is one row of the per-command tables.
type applyCase struct {
	name    string
	empty   bool             // start from New instead of newHarness's fixture
	setup   func(h *harness) // beyond the fixture
	cmd     *fsmpb.Command
	wantErr error    // sentinel, nil for success
	wantMsg []string // substrings of the rejection message
	check   func(t *testing.T, h *harness, res *Result)
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.empty {
				h = newEmptyHarness(t)
			}
			if tc.setup != nil {
				tc.setup(h)
			}
			before := stateBytes(t, h.f)
			res := h.apply(tc.cmd)
			if got := h.f.AppliedIndex(); got != h.index {
				t.Errorf("AppliedIndex = %d, want %d", got, h.index)
			}
			checkEvent(t, h, tc.cmd, res)
			if tc.wantErr == nil {
				if res.Err != nil {
					t.Fatalf("unexpected rejection: %v", res.Err)
				}
				if tc.check != nil {
					tc.check(t, h, res)
				}
				checkInvariants(t, h.f)
				return
			}
			checkRejection(t, res, tc.wantErr, tc.wantMsg...)
			if after := stateBytes(t, h.f); !bytes.Equal(before, after) {
				t.Errorf("rejected command changed the state")
			}
		})
	}
}

func checkRejection(t *testing.T, res *Result, want error, msgParts ...string) {
	t.Helper()
	if !errors.Is(res.Err, want) {
		t.Fatalf("err = %v, want %v", res.Err, want)
	}
	var rej *RejectError
	if !errors.As(res.Err, &rej) {
		t.Fatalf("err %T is not a *RejectError", res.Err)
	}
	for _, part := range msgParts {
		if !strings.Contains(rej.Error(), part) {
			t.Errorf("message %q does not contain %q", rej.Error(), part)
		}
	}
	if res.Key != nil || res.Alias != nil || res.Grant != nil {
		t.Errorf("rejection carries Key=%v Alias=%v Grant=%v", res.Key, res.Alias, res.Grant)
	}
}

// checkInvariants verifies what every Apply must preserve.
func checkInvariants(t testing.TB, f *FSM) {
	t.Helper()
	keys, _ := f.ListKeys("", 0)
	for _, k := range keys {
		if len(k.GetVersions()) == 0 {
			t.Errorf("key %s has no versions", k.GetKeyId())
		}
		if len(k.GetTags()) > maxTagsPerKey {
			t.Errorf("key %s has %d tags", k.GetKeyId(), len(k.GetTags()))
		}
		switch k.GetState() {
		case enabled, disabled:
			if k.GetDeletionTimeUnixNano() != 0 {
				t.Errorf("key %s is %v with a deletion time", k.GetKeyId(), k.GetState())
			}
		case pendingDeletion:
			if k.GetDeletionTimeUnixNano() == 0 {
				t.Errorf("key %s is pending deletion without a deletion time", k.GetKeyId())
			}
		case pendingReplicaDeletion:
			if k.GetDeletionTimeUnixNano() != 0 || len(k.GetMultiRegion().GetReplicas()) == 0 {
				t.Errorf("key %s is pending replica deletion with a deletion time or without replicas", k.GetKeyId())
			}
		default:
			t.Errorf("key %s in state %v", k.GetKeyId(), k.GetState())
		}
		if k.GetRotationEnabled() != (k.GetNextRotationTimeUnixNano() != 0) {
			t.Errorf("key %s: rotation enabled %v with next rotation %d", k.GetKeyId(), k.GetRotationEnabled(), k.GetNextRotationTimeUnixNano())
		}
		seen := map[string]bool{}
		for _, v := range k.GetVersions() {
			if seen[string(v.GetVersionId())] {
				t.Errorf("key %s repeats version %x", k.GetKeyId(), v.GetVersionId())
			}
			seen[string(v.GetVersionId())] = true
		}
	}
	aliases, _ := f.ListAliases("", "", 0)
	for _, a := range aliases {
		if _, ok := f.Key(a.GetTargetKeyId()); !ok {
			t.Errorf("alias %s points at missing key %s", a.GetName(), a.GetTargetKeyId())
		}
	}
	checkGrantInvariants(t, f)
	events := f.ManagementEvents(0, 0)
	if len(events) > MaxManagementEvents {
		t.Errorf("%d management events kept", len(events))
	}
	for i := 1; i < len(events); i++ {
		if events[i].GetIndex() <= events[i-1].GetIndex() {
			t.Errorf("event index %d after %d", events[i].GetIndex(), events[i-1].GetIndex())
		}
	}
	if n := len(events); n > 0 && events[n-1].GetIndex() > f.AppliedIndex() {
		t.Errorf("event at index %d beyond applied index %d", events[n-1].GetIndex(), f.AppliedIndex())
	}
}

// checkGrantInvariants checks that the three grant indexes agree: every
// grant listed by ListRetirableGrants' full scan is in its key's Grants (in
// creation order) and ListGrants, on an existing key, and not removed.
func checkGrantInvariants(t testing.TB, f *FSM) {
	t.Helper()
	f.mu.RLock()
	var all []*fsmpb.Grant
	for _, g := range f.st.grants.all() {
		all = append(all, g)
	}
	f.mu.RUnlock()
	perKey := map[string]int{}
	for _, g := range all {
		perKey[g.GetKeyId()]++
		if _, ok := f.Key(g.GetKeyId()); !ok {
			t.Errorf("grant %s on missing key %s", g.GetGrantId(), g.GetKeyId())
		}
		if got, ok := f.Grant(g.GetGrantId()); !ok || got != g {
			t.Errorf("Grant(%s) = %v, %v", g.GetGrantId(), got, ok)
		}
		if f.GrantRemoved(g.GetGrantId()) {
			t.Errorf("grant %s is present and removed", g.GetGrantId())
		}
		if g.GetGrantId() == "" || g.GetGranteePrincipal() == "" || len(g.GetOperations()) == 0 ||
			len(g.GetEncryptionContextEquals()) > 0 && len(g.GetEncryptionContextSubset()) > 0 {
			t.Errorf("invalid grant stored: %v", g)
		}
	}
	for keyID, n := range perKey {
		list := f.Grants(keyID)
		if len(list) != n {
			t.Errorf("key %s: Grants has %d, the grant table %d", keyID, len(list), n)
		}
		if !slices.IsSortedFunc(list, compareCreation) {
			t.Errorf("key %s: Grants not in creation order", keyID)
		}
		if paged, _ := f.ListGrants(keyID, "", 0); len(paged) != n {
			t.Errorf("key %s: ListGrants has %d, the grant table %d", keyID, len(paged), n)
		}
		for _, g := range list {
			if g.GetKeyId() != keyID {
				t.Errorf("Grants(%s) holds grant %s of key %s", keyID, g.GetGrantId(), g.GetKeyId())
			}
		}
	}
	f.mu.RLock()
	keysWithGrants := len(f.st.keyGrants)
	f.mu.RUnlock()
	if keysWithGrants != len(perKey) {
		t.Errorf("%d keys have grant lists, %d keys have grants", keysWithGrants, len(perKey))
	}
}

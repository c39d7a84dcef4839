package fsm

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func newGrant(id, keyID string) *fsmpb.Grant {
	return &fsmpb.Grant{
		GrantId:           id,
		KeyId:             keyID,
		GranteePrincipal:  "spiffe://eu-1/app",
		RetiringPrincipal: "spiffe://eu-1/admin",
		Operations:        []string{"Encrypt", "Decrypt"},
		IssuingPrincipal:  "spiffe://eu-1/admin",
	}
}

func createGrant(at int64, g *fsmpb.Grant) *fsmpb.Command {
	return wrap(at, &fsmpb.CreateGrant{Grant: g})
}

func retire(at int64, keyID, grantID string) *fsmpb.Command {
	return wrap(at, &fsmpb.RemoveGrant{KeyId: keyID, GrantId: grantID})
}

func revoke(at int64, keyID, grantID string) *fsmpb.Command {
	return wrap(at, &fsmpb.RemoveGrant{KeyId: keyID, GrantId: grantID, Revoke: true})
}

func grantIDs(grants []*fsmpb.Grant) string {
	ids := make([]string, len(grants))
	for i, g := range grants {
		ids[i] = g.GetGrantId()
	}
	return strings.Join(ids, ",")
}

func TestCreateGrant(t *testing.T) {
	withGrant := func(change func(g *fsmpb.Grant)) *fsmpb.Command {
		g := newGrant("g-new", keyEnabled)
		change(g)
		return createGrant(t0+hour, g)
	}
	withTokenKey := func(key []byte, dk string) *fsmpb.Command {
		return wrap(t0+hour, &fsmpb.CreateGrant{Grant: newGrant("g-new", keyEnabled), GrantTokenKey: key, GrantTokenDomainKeyId: dk})
	}
	existing := func(h *harness) { h.mustApply(createGrant(t0, newGrant("g-1", keyEnabled))) }
	runApplyCases(t, []applyCase{
		{
			name: "stores the grant at the command time",
			cmd:  withGrant(func(g *fsmpb.Grant) { g.CreationTimeUnixNano = 5 }),
			check: func(t *testing.T, h *harness, res *Result) {
				g, ok := h.f.Grant("g-new")
				if !ok || res.Grant != g {
					t.Fatalf("Grant = %v, %v; Result.Grant %v", g, ok, res.Grant)
				}
				if g.GetCreationTimeUnixNano() != t0+hour || g.GetKeyId() != keyEnabled || g.GetIssuingPrincipal() != "spiffe://eu-1/admin" {
					t.Errorf("grant %v", g)
				}
				if got := h.f.Grants(keyEnabled); len(got) != 1 || got[0] != g {
					t.Errorf("Grants = %v", got)
				}
				if res.Key != nil {
					t.Errorf("Result.Key %v", res.Key)
				}
			},
		},
		{name: "disabled key", cmd: withGrant(func(g *fsmpb.Grant) { g.KeyId = keyDisabled })},
		{name: "one constraint map", cmd: withGrant(func(g *fsmpb.Grant) { g.EncryptionContextSubset = map[string]string{"a": "b"} })},
		{
			name:    "pending deletion",
			cmd:     withGrant(func(g *fsmpb.Grant) { g.KeyId = keyPending }),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is pending deletion; CreateGrant needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     withGrant(func(g *fsmpb.Grant) { g.KeyId = keyMissing }),
			wantErr: ErrNotFound,
			wantMsg: []string{"key " + keyMissing + " does not exist"},
		},
		{
			name:    "no grant",
			cmd:     wrap(t0+hour, &fsmpb.CreateGrant{}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"CreateGrant needs a key id"},
		},
		{
			name:    "no grant id",
			cmd:     withGrant(func(g *fsmpb.Grant) { g.GrantId = "" }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"key " + keyEnabled + ": CreateGrant needs a GrantId"},
		},
		{
			name:    "no grantee",
			cmd:     withGrant(func(g *fsmpb.Grant) { g.GranteePrincipal = "" }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"CreateGrant needs a GranteePrincipal"},
		},
		{
			name:    "no operations",
			cmd:     withGrant(func(g *fsmpb.Grant) { g.Operations = nil }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"CreateGrant needs at least one of Operations"},
		},
		{
			name:    "empty operation",
			cmd:     withGrant(func(g *fsmpb.Grant) { g.Operations = []string{"Encrypt", ""} }),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"Operations[1] of the grant is empty"},
		},
		{
			name: "both constraint maps",
			cmd: withGrant(func(g *fsmpb.Grant) {
				g.EncryptionContextEquals = map[string]string{"a": "b"}
				g.EncryptionContextSubset = map[string]string{"c": "d"}
			}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"both EncryptionContextEquals and EncryptionContextSubset"},
		},
		{
			name:    "grant id taken",
			setup:   existing,
			cmd:     withGrant(func(g *fsmpb.Grant) { g.GrantId = "g-1"; g.KeyId = keyHMAC }),
			wantErr: ErrAlreadyExists,
			wantMsg: []string{"grant g-1 already exists"},
		},
		{
			name: "grant id of a recently removed grant",
			setup: func(h *harness) {
				existing(h)
				h.mustApply(retire(t0, keyEnabled, "g-1"))
			},
			cmd:     withGrant(func(g *fsmpb.Grant) { g.GrantId = "g-1" }),
			wantErr: ErrAlreadyExists,
			wantMsg: []string{"grant g-1 was removed recently"},
		},
		{
			name: "sets the region's grant token key",
			cmd:  withTokenKey([]byte("wrapped"), dk1),
			check: func(t *testing.T, h *harness, res *Result) {
				if r := h.f.Region(); string(r.GetGrantTokenKey()) != "wrapped" || r.GetGrantTokenDomainKeyId() != dk1 || r.GetName() != regionName {
					t.Errorf("region %v", r)
				}
			},
		},
		{
			name: "keeps the first grant token key",
			setup: func(h *harness) {
				h.mustApply(wrap(t0, &fsmpb.CreateGrant{Grant: newGrant("g-1", keyEnabled), GrantTokenKey: []byte("first"), GrantTokenDomainKeyId: dk1}))
			},
			cmd: withTokenKey([]byte("second"), "dk-unknown"),
			check: func(t *testing.T, h *harness, res *Result) {
				if r := h.f.Region(); string(r.GetGrantTokenKey()) != "first" {
					t.Errorf("region %v", r)
				}
			},
		},
		{
			name:    "grant token key under an unknown domain key",
			cmd:     withTokenKey([]byte("wrapped"), "dk-unknown"),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{`grant token key is wrapped under unknown domain key "dk-unknown"`},
		},
	})
}

func TestCreateGrantDoesNotModifyThePublishedRegion(t *testing.T) {
	h := newHarness(t)
	old := h.f.Region()
	h.mustApply(wrap(t0, &fsmpb.CreateGrant{Grant: newGrant("g-1", keyEnabled), GrantTokenKey: []byte("k"), GrantTokenDomainKeyId: dk1}))
	if len(old.GetGrantTokenKey()) != 0 || h.f.Region() == old {
		t.Error("CreateGrant modified the published region instead of a clone")
	}
}

func TestCreateGrantWithTheSameNameIsIdempotent(t *testing.T) {
	named := func(id string, change func(g *fsmpb.Grant)) *fsmpb.Grant {
		g := newGrant(id, keyEnabled)
		g.Name = "ci-deploy"
		g.Operations = []string{"Decrypt", "Encrypt", "Decrypt"}
		g.EncryptionContextEquals = map[string]string{"tenant": "a", "env": "prod"}
		if change != nil {
			change(g)
		}
		return g
	}
	h := newHarness(t)
	first := h.mustApply(createGrant(t0, named("g-1", nil))).Grant

	// Operations as a set, constraint maps by content: the same grant.
	before := stateBytes(t, h.f)
	res := h.mustApply(createGrant(t0+hour, named("g-2", func(g *fsmpb.Grant) {
		g.Operations = []string{"Encrypt", "Decrypt"}
		g.EncryptionContextEquals = map[string]string{"env": "prod", "tenant": "a"}
		g.IssuingPrincipal = "someone else" // not a parameter AWS compares
	})))
	if res.Grant != first {
		t.Fatalf("Result.Grant %v, want the existing grant %v", res.Grant, first)
	}
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("an idempotent CreateGrant changed the state")
	}
	if _, ok := h.f.Grant("g-2"); ok {
		t.Error("the proposed grant was stored")
	}
	if ev := h.f.ManagementEvents(h.index-1, 0); len(ev) != 1 || ev[0].GetGrantId() != "g-1" || ev[0].GetErrorKind() != "" {
		t.Errorf("events %v: want CreateGrant returning g-1", ev)
	}

	// Any difference in a parameter, or no name, makes a new grant.
	for i, change := range []func(g *fsmpb.Grant){
		func(g *fsmpb.Grant) { g.Name = "other" },
		func(g *fsmpb.Grant) { g.Name = "" },
		func(g *fsmpb.Grant) { g.KeyId = keyDisabled },
		func(g *fsmpb.Grant) { g.GranteePrincipal = "other" },
		func(g *fsmpb.Grant) { g.RetiringPrincipal = "" },
		func(g *fsmpb.Grant) { g.Operations = []string{"Decrypt"} },
		func(g *fsmpb.Grant) { g.Operations = append(g.Operations, "GenerateDataKey") },
		func(g *fsmpb.Grant) { g.EncryptionContextEquals = map[string]string{"tenant": "a"} },
		func(g *fsmpb.Grant) { g.EncryptionContextEquals = nil },
		func(g *fsmpb.Grant) {
			g.EncryptionContextSubset, g.EncryptionContextEquals = g.EncryptionContextEquals, nil
		},
	} {
		id := fmt.Sprintf("g-diff-%d", i)
		if res := h.mustApply(createGrant(t0+hour, named(id, change))); res.Grant.GetGrantId() != id {
			t.Errorf("change %d: got grant %s, want a new grant %s", i, res.Grant.GetGrantId(), id)
		}
	}
	// Two unnamed grants with the same parameters are two grants.
	h.mustApply(createGrant(t0+hour, named("g-unnamed", func(g *fsmpb.Grant) { g.Name = "" })))
	if n := len(h.f.Grants(keyEnabled)); n != 11 {
		t.Errorf("key has %d grants, want 11", n)
	}
}

// TestCreateGrantIdempotentWithTakenID: a retried command whose own id is
// the existing grant's (the same entry proposed twice) returns that grant.
func TestCreateGrantIdempotentWithTakenID(t *testing.T) {
	h := newHarness(t)
	g := newGrant("g-1", keyEnabled)
	g.Name = "n"
	first := h.mustApply(createGrant(t0, proto.Clone(g).(*fsmpb.Grant))).Grant
	if res := h.mustApply(createGrant(t0, g)); res.Grant != first {
		t.Errorf("Result.Grant %v", res.Grant)
	}
}

func withGrantQuota(t *testing.T, n int) {
	old := maxGrantsPerKey
	maxGrantsPerKey = n
	t.Cleanup(func() { maxGrantsPerKey = old })
}

func TestGrantQuota(t *testing.T) {
	withGrantQuota(t, 3)
	h := newHarness(t)
	for i := range 3 {
		g := newGrant(fmt.Sprintf("g-%d", i), keyEnabled)
		g.Name = fmt.Sprintf("n-%d", i)
		h.mustApply(createGrant(t0, g))
	}
	before := stateBytes(t, h.f)
	checkRejection(t, h.apply(createGrant(t0, newGrant("g-3", keyEnabled))), ErrLimitExceeded,
		"key "+keyEnabled+" has 3 grants; the limit is 3")
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("rejected CreateGrant changed the state")
	}

	// At the quota, a repeated named CreateGrant still gets its grant.
	again := newGrant("g-3", keyEnabled)
	again.Name = "n-1"
	if res := h.mustApply(createGrant(t0, again)); res.Grant.GetGrantId() != "g-1" {
		t.Errorf("got %v, want the existing g-1", res.Grant)
	}
	// The quota is per key, and a removal makes room.
	h.mustApply(createGrant(t0, newGrant("g-other", keyHMAC)))
	h.mustApply(revoke(t0, keyEnabled, "g-0"))
	h.mustApply(createGrant(t0, newGrant("g-3", keyEnabled)))
	checkInvariants(t, h.f)
}

func TestRemoveGrant(t *testing.T) {
	twoGrants := func(h *harness) {
		h.mustApply(createGrant(t0, newGrant("g-1", keyEnabled)))
		h.mustApply(createGrant(t0, newGrant("g-2", keyEnabled)))
	}
	removed := func(t *testing.T, h *harness, res *Result) {
		if res.Grant.GetGrantId() != "g-1" {
			t.Errorf("Result.Grant %v, want the removed g-1", res.Grant)
		}
		if _, ok := h.f.Grant("g-1"); ok {
			t.Error("grant still there")
		}
		if !h.f.GrantRemoved("g-1") || h.f.GrantRemoved("g-2") {
			t.Errorf("GrantRemoved g-1 %v g-2 %v", h.f.GrantRemoved("g-1"), h.f.GrantRemoved("g-2"))
		}
		if got := grantIDs(h.f.Grants(keyEnabled)); got != "g-2" {
			t.Errorf("Grants %s", got)
		}
		if got, _ := h.f.ListGrants(keyEnabled, "", 0); grantIDs(got) != "g-2" {
			t.Errorf("ListGrants %s", grantIDs(got))
		}
	}
	runApplyCases(t, []applyCase{
		{name: "retire", setup: twoGrants, cmd: retire(t0+hour, keyEnabled, "g-1"), check: removed},
		{name: "revoke", setup: twoGrants, cmd: revoke(t0+hour, keyEnabled, "g-1"), check: removed},
		{
			name: "the last grant of a key",
			setup: func(h *harness) {
				h.mustApply(createGrant(t0, newGrant("g-1", keyEnabled)))
			},
			cmd: retire(t0+hour, keyEnabled, "g-1"),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.f.Grants(keyEnabled); got != nil {
					t.Errorf("Grants %v", got)
				}
			},
		},
		{
			name: "key pending deletion",
			setup: func(h *harness) {
				h.mustApply(createGrant(t0, newGrant("g-1", keyDisabled)))
				h.mustApply(wrap(t0, &fsmpb.ScheduleKeyDeletion{KeyId: keyDisabled, PendingWindowDays: 7}))
			},
			cmd: revoke(t0+hour, keyDisabled, "g-1"),
		},
		{
			name:    "grant of another key",
			setup:   twoGrants,
			cmd:     revoke(t0+hour, keyHMAC, "g-1"),
			wantErr: ErrNotFound,
			wantMsg: []string{"grant g-1 of key " + keyHMAC + " does not exist"},
		},
		{
			name:    "missing grant",
			setup:   twoGrants,
			cmd:     retire(t0+hour, keyEnabled, "g-9"),
			wantErr: ErrNotFound,
			wantMsg: []string{"grant g-9 of key " + keyEnabled + " does not exist"},
		},
		{
			name: "already removed",
			setup: func(h *harness) {
				twoGrants(h)
				h.mustApply(retire(t0, keyEnabled, "g-1"))
			},
			cmd:     revoke(t0+hour, keyEnabled, "g-1"),
			wantErr: ErrNotFound,
			wantMsg: []string{"grant g-1 of key"},
		},
		{
			name:    "no grant id",
			cmd:     revoke(t0+hour, keyEnabled, ""),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"RevokeGrant needs a GrantId"},
		},
		{
			name:    "no key id",
			setup:   twoGrants,
			cmd:     retire(t0+hour, "", "g-1"),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"grant g-1: RetireGrant needs a key id"},
		},
	})
}

func TestRemovedGrantsArePrunedByCommandTime(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		h.mustApply(createGrant(t0, newGrant(fmt.Sprintf("g-%d", i), keyEnabled)))
	}
	maxAge := int64(GrantTokenMaxAge)
	h.mustApply(retire(t0, keyEnabled, "g-0"))
	h.mustApply(retire(t0+maxAge/2, keyEnabled, "g-1"))
	// Exactly GrantTokenMaxAge after g-0's removal: still remembered.
	h.mustApply(retire(t0+maxAge, keyEnabled, "g-2"))
	if !h.f.GrantRemoved("g-0") {
		t.Error("g-0 forgotten at exactly GrantTokenMaxAge")
	}
	// A nanosecond later g-0 is forgotten, g-1 is not.
	h.mustApply(retire(t0+maxAge+1, keyEnabled, "g-3"))
	for id, want := range map[string]bool{"g-0": false, "g-1": true, "g-2": true, "g-3": true} {
		if got := h.f.GrantRemoved(id); got != want {
			t.Errorf("GrantRemoved(%s) = %v, want %v", id, got, want)
		}
	}
	// Forgotten ids can be reused (a proposer's random id never is, but the
	// rule must be the same on every node).
	h.mustApply(createGrant(t0+maxAge+1, newGrant("g-0", keyEnabled)))

	// A removal whose time lags (another leader's clock) is kept at least
	// as long as it must be; pruning never forgets one early.
	h.mustApply(retire(t0+maxAge/4, keyEnabled, "g-4"))
	h.mustApply(retire(t0+2*maxAge, keyEnabled, "g-0"))
	for id, want := range map[string]bool{"g-1": false, "g-2": true, "g-3": true, "g-4": true, "g-0": true} {
		if got := h.f.GrantRemoved(id); got != want {
			t.Errorf("after the lagging removal: GrantRemoved(%s) = %v, want %v", id, got, want)
		}
	}
	h.apply(retire(t0+10*maxAge, keyHMAC, "absent")) // rejected: prunes nothing
	if !h.f.GrantRemoved("g-0") {
		t.Error("a rejected RemoveGrant pruned")
	}

	// A restored node forgets the same ones as the original.
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*fsmpb.Command{
		createGrant(t0+10*maxAge, newGrant("g-5", keyEnabled)),
		retire(t0+10*maxAge, keyEnabled, "g-5"),
	} {
		h.mustApply(cmd)
		data, _ := Encode(cmd)
		if res := restored.Apply(h.index, data).(*Result); res.Err != nil {
			t.Fatal(res.Err)
		}
	}
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, restored)) {
		t.Error("original and restored diverge after pruning")
	}
	for _, id := range []string{"g-0", "g-2", "g-3", "g-4"} {
		if h.f.GrantRemoved(id) || restored.GrantRemoved(id) {
			t.Errorf("%s still remembered", id)
		}
	}
}

func TestDeleteKeyRemovesItsGrants(t *testing.T) {
	h := newHarness(t)
	h.mustApply(createGrant(t0, newGrant("g-1", keyDisabled)))
	h.mustApply(createGrant(t0, newGrant("g-2", keyDisabled)))
	h.mustApply(createGrant(t0, newGrant("g-keep", keyEnabled)))
	h.mustApply(wrap(t0, &fsmpb.ScheduleKeyDeletion{KeyId: keyDisabled, PendingWindowDays: 7}))
	res := h.mustApply(wrap(t0+8*day, &fsmpb.DeleteKey{KeyId: keyDisabled}))
	if res.Key.GetKeyId() != keyDisabled || res.Grant != nil {
		t.Errorf("result %v", res)
	}
	for _, id := range []string{"g-1", "g-2"} {
		if _, ok := h.f.Grant(id); ok {
			t.Errorf("grant %s survived its key", id)
		}
		if h.f.GrantRemoved(id) {
			t.Errorf("grant %s remembered as removed; its key is gone", id)
		}
	}
	if got := h.f.Grants(keyDisabled); got != nil {
		t.Errorf("Grants %v", got)
	}
	if got, _ := h.f.ListGrants(keyDisabled, "", 0); got != nil {
		t.Errorf("ListGrants %v", got)
	}
	if got := grantIDs(h.f.Grants(keyEnabled)); got != "g-keep" {
		t.Errorf("other key's grants %s", got)
	}
	checkInvariants(t, h.f)
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
}

func TestGrantsAreInCreationOrder(t *testing.T) {
	h := newHarness(t)
	// Command times do not always increase; ties go by grant id.
	for _, c := range []struct {
		id string
		at int64
	}{{"g-b", t0 + 2*hour}, {"g-z", t0 + hour}, {"g-a", t0 + 2*hour}, {"g-c", t0 + 3*hour}, {"g-y", t0}} {
		h.mustApply(createGrant(c.at, newGrant(c.id, keyEnabled)))
	}
	const want = "g-y,g-z,g-a,g-b,g-c"
	if got := grantIDs(h.f.Grants(keyEnabled)); got != want {
		t.Errorf("Grants %s, want %s", got, want)
	}
	h.mustApply(retire(t0, keyEnabled, "g-a"))
	if got := grantIDs(h.f.Grants(keyEnabled)); got != "g-y,g-z,g-b,g-c" {
		t.Errorf("after removing g-a: %s", got)
	}
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	if got := grantIDs(restored.Grants(keyEnabled)); got != "g-y,g-z,g-b,g-c" {
		t.Errorf("restored: %s", got)
	}
}

func TestGrantsSliceIsShared(t *testing.T) {
	h := newHarness(t)
	h.mustApply(createGrant(t0, newGrant("g-1", keyEnabled)))
	h.mustApply(createGrant(t0, newGrant("g-2", keyEnabled)))
	held := h.f.Grants(keyEnabled)
	if cap(held) != len(held) {
		t.Errorf("cap %d > len %d: a caller's append would write into the state", cap(held), len(held))
	}
	_ = append(held, newGrant("intruder", keyEnabled))
	h.mustApply(createGrant(t0, newGrant("g-3", keyEnabled)))
	h.mustApply(retire(t0, keyEnabled, "g-1"))
	if got := grantIDs(held); got != "g-1,g-2" {
		t.Errorf("a held slice changed to %s", got)
	}
	if got := grantIDs(h.f.Grants(keyEnabled)); got != "g-2,g-3" {
		t.Errorf("Grants %s", got)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = h.f.Grants(keyEnabled) }); allocs != 0 {
		t.Errorf("Grants allocates %v times", allocs)
	}
}

func TestListGrants(t *testing.T) {
	h := newHarness(t)
	for i := range 7 {
		id := fmt.Sprintf("g-%d", (i*3)%7) // created out of id order
		h.mustApply(createGrant(t0+int64(i), newGrant(id, keyEnabled)))
		h.mustApply(createGrant(t0, newGrant("h-"+id, keyHMAC)))
	}
	list := func(keyID, after string, limit int) string {
		grants, truncated := h.f.ListGrants(keyID, after, limit)
		return fmt.Sprintf("%s %v", grantIDs(grants), truncated)
	}
	for _, tc := range []struct {
		keyID, after string
		limit        int
		want         string
	}{
		{keyEnabled, "", 0, "g-0,g-1,g-2,g-3,g-4,g-5,g-6 false"},
		{keyEnabled, "", 3, "g-0,g-1,g-2 true"},
		{keyEnabled, "g-2", 3, "g-3,g-4,g-5 true"},
		{keyEnabled, "g-3", 3, "g-4,g-5,g-6 false"},
		{keyEnabled, "g-35", 2, "g-4,g-5 true"}, // the marker's grant need not exist
		{keyEnabled, "g-6", 3, " false"},
		{keyHMAC, "h-g-4", 0, "h-g-5,h-g-6 false"},
		{keyDisabled, "", 0, " false"},
		{keyMissing, "", 0, " false"},
	} {
		if got := list(tc.keyID, tc.after, tc.limit); got != tc.want {
			t.Errorf("ListGrants(%s, %q, %d) = %s, want %s", tc.keyID, tc.after, tc.limit, got, tc.want)
		}
	}
	// A page's marker stays valid when its grant is removed.
	h.mustApply(revoke(t0, keyEnabled, "g-2"))
	if got := list(keyEnabled, "g-2", 2); got != "g-3,g-4 true" {
		t.Errorf("after removing the marker's grant: %s", got)
	}
}

func TestListRetirableGrants(t *testing.T) {
	h := newHarness(t)
	for i, c := range []struct{ id, keyID, retiring string }{
		{"g-1", keyEnabled, "admin"}, {"g-2", keyHMAC, "admin"}, {"g-3", keyEnabled, "other"},
		{"g-4", keyDisabled, "admin"}, {"g-5", keyEnabled, ""},
	} {
		g := newGrant(c.id, c.keyID)
		g.RetiringPrincipal = c.retiring
		h.mustApply(createGrant(t0+int64(i), g))
	}
	for _, tc := range []struct {
		principal, after string
		limit            int
		want             string
	}{
		{"admin", "", 0, "g-1,g-2,g-4 false"},
		{"admin", "", 2, "g-1,g-2 true"},
		{"admin", "g-2", 2, "g-4 false"},
		{"other", "", 0, "g-3 false"},
		{"nobody", "", 0, " false"},
		{"", "", 0, " false"},
	} {
		grants, truncated := h.f.ListRetirableGrants(tc.principal, tc.after, tc.limit)
		if got := fmt.Sprintf("%s %v", grantIDs(grants), truncated); got != tc.want {
			t.Errorf("ListRetirableGrants(%q, %q, %d) = %s, want %s", tc.principal, tc.after, tc.limit, got, tc.want)
		}
	}
}

// grantsHarness has grants on two keys, a token key, and removed grants.
func grantsHarness(t testing.TB) *harness {
	h := busyHarness(t)
	h.mustApply(wrap(t0+hour, &fsmpb.CreateGrant{Grant: newGrant("g-1", keyEnabled), GrantTokenKey: []byte("wrapped"), GrantTokenDomainKeyId: "dk-2"}))
	g := newGrant("g-2", keyHMAC)
	g.Name = "mac"
	g.Operations = []string{"GenerateMac", "VerifyMac"}
	g.EncryptionContextSubset = map[string]string{"b": "2", "a": "1"}
	h.mustApply(createGrant(t0+hour, g))
	h.mustApply(createGrant(t0+2*hour, newGrant("g-3", keyEnabled)))
	h.mustApply(createGrant(t0+2*hour, newGrant("g-4", keyDisabled)))
	h.mustApply(retire(t0+2*hour, keyEnabled, "g-3"))
	h.mustApply(createGrant(t0+2*hour, newGrant("g-5", keyEnabled)))
	h.mustApply(revoke(t0+2*hour+time.Minute.Nanoseconds(), keyEnabled, "g-5"))
	h.mustApply(putPolicy(keyEnabled, []byte(testPolicy)))
	return h
}

func TestSnapshotRoundTripWithGrants(t *testing.T) {
	h := grantsHarness(t)
	snap := snapshotBytes(t, h.f)
	restored := New(Config{})
	if err := restored.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snapshotBytes(t, restored)) {
		t.Fatal("snapshot of the restored FSM differs")
	}
	for _, f := range []*FSM{h.f, restored} {
		if got := grantIDs(f.Grants(keyEnabled)); got != "g-1" {
			t.Errorf("Grants %s", got)
		}
		if g, ok := f.Grant("g-2"); !ok || g.GetEncryptionContextSubset()["b"] != "2" || g.GetName() != "mac" {
			t.Errorf("grant g-2 %v", g)
		}
		if !f.GrantRemoved("g-3") || !f.GrantRemoved("g-5") || f.GrantRemoved("g-1") {
			t.Error("removed grants lost")
		}
		if string(f.Region().GetGrantTokenKey()) != "wrapped" {
			t.Errorf("region %v", f.Region())
		}
		if k, _ := f.Key(keyEnabled); string(k.GetPolicy()) != testPolicy {
			t.Errorf("policy %q", k.GetPolicy())
		}
	}
	checkInvariants(t, restored)

	// Equal states, equal bytes: the same grants reached in another order.
	next := revoke(t0+3*hour, keyHMAC, "g-2")
	h.mustApply(next)
	data, _ := Encode(next)
	if res := restored.Apply(h.index, data).(*Result); res.Err != nil {
		t.Fatal(res.Err)
	}
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, restored)) {
		t.Error("original and restored diverge after one more command")
	}
}

func TestSnapshotIsolationWithGrants(t *testing.T) {
	h := grantsHarness(t)
	want := snapshotBytes(t, h.f)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	for i := range 300 { // past a chunk of removed grants
		id := fmt.Sprintf("g-x%03d", i)
		h.mustApply(createGrant(t0+3*hour, newGrant(id, keyEnabled)))
		h.mustApply(retire(t0+3*hour, keyEnabled, id))
	}
	h.mustApply(revoke(t0+day, keyEnabled, "g-1")) // prunes every removal so far
	h.mustApply(createGrant(t0+day, newGrant("g-new", keyHMAC)))
	h.mustApply(wrap(t0+day, &fsmpb.ScheduleKeyDeletion{KeyId: keyDisabled, PendingWindowDays: 7}))
	h.mustApply(wrap(t0+9*day, &fsmpb.DeleteKey{KeyId: keyDisabled}))
	var got bytes.Buffer
	if _, err := snap.WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Error("snapshot reflects grant commands applied after it was taken")
	}
	if h.f.GrantRemoved("g-3") || !h.f.GrantRemoved("g-1") {
		t.Error("pruning did not happen")
	}
}

func TestRestoreRejectsBrokenGrantInvariants(t *testing.T) {
	rec := func(r *fsmpb.SnapshotRecord) []byte { return marshalRecord(t, r) }
	region := rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: &fsmpb.Region{Name: "r", ActiveDomainKeyId: "dk"}}})
	dk := rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk"}}})
	key := newKey("k")
	key.State = enabled
	keyRec := rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: key}})
	grant := func(id, keyID string) []byte {
		return rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Grant{Grant: newGrant(id, keyID)}})
	}
	removed := func(id string) []byte {
		return rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_RemovedGrant{RemovedGrant: &fsmpb.RemovedGrant{GrantId: id, KeyId: "k"}}})
	}
	bigPolicy := newKey("k2")
	bigPolicy.State = enabled
	bigPolicy.Policy = make([]byte, maxPolicyBytes+1)

	// The valid base restores; each case breaks one invariant.
	if err := New(Config{}).Restore(bytes.NewReader(encodeStream(9, region, dk, keyRec, grant("g", "k"), removed("r")))); err != nil {
		t.Fatalf("valid stream: %v", err)
	}
	for name, tc := range map[string]struct {
		stream []byte
		msg    string
	}{
		"grant without an id":       {encodeStream(9, region, dk, keyRec, grant("", "k")), `grant id "" empty or repeated`},
		"repeated grant id":         {encodeStream(9, region, dk, keyRec, grant("g", "k"), grant("g", "k")), `grant id "g" empty or repeated`},
		"grant on a missing key":    {encodeStream(9, region, dk, keyRec, grant("g", "gone")), `grant g is on missing key "gone"`},
		"removed grant without id":  {encodeStream(9, region, dk, removed("")), `removed grant id "" empty or repeated`},
		"repeated removed grant":    {encodeStream(9, region, dk, removed("r"), removed("r")), `removed grant id "r" empty or repeated`},
		"grant present and removed": {encodeStream(9, region, dk, keyRec, grant("g", "k"), removed("g")), "grant g is both present and removed"},
		"token key under a missing domain key": {
			encodeStream(9, rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: &fsmpb.Region{
				Name: "r", ActiveDomainKeyId: "dk", GrantTokenKey: []byte("w"), GrantTokenDomainKeyId: "dk-gone"}}}), dk),
			`grant token key is wrapped under domain key "dk-gone"`,
		},
		"policy over the limit": {
			encodeStream(9, region, dk, rec(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: bigPolicy}})),
			"key k2 with a policy of 32769 bytes",
		},
		"grant in a version 1 stream": {encodeStreamVersion(1, 9, region, dk, keyRec, grant("g", "k")), "format version 1 holds no"},
	} {
		t.Run(name, func(t *testing.T) {
			h := grantsHarness(t)
			restoreRejects(t, h.f, tc.stream, tc.msg)
		})
	}
}

// TestGrantReadersDuringApply runs the grant readers against a stream of
// grant commands; under -race it catches a write to a published slice.
func TestGrantReadersDuringApply(t *testing.T) {
	h := newHarness(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				list := h.f.Grants(keyEnabled)
				if !slices.IsSortedFunc(list, compareCreation) {
					t.Error("Grants out of order")
					return
				}
				for _, g := range list {
					_, _ = proto.Marshal(g)
				}
				h.f.ListGrants(keyEnabled, "g-0100", 10)
				h.f.ListRetirableGrants("spiffe://eu-1/admin", "", 5)
				h.f.GrantRemoved("g-0003")
				h.f.ManagementEvents(h.f.AppliedIndex()-20, 0)
			}
		})
	}
	for i := range 2000 {
		id := fmt.Sprintf("g-%04d", i)
		// Times out of order now and then: insertions before the end.
		h.mustApply(createGrant(t0+int64(i%7), newGrant(id, keyEnabled)))
		if i%3 == 0 {
			h.mustApply(retire(t0+int64(i), keyEnabled, id))
		}
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, h.f)
}

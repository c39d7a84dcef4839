package fsm

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func initRegion(name, dk, node string) *fsmpb.Command {
	return wrap(t0, &fsmpb.InitRegion{
		Name:      name,
		DomainKey: &fsmpb.DomainKey{Id: dk},
		Node:      &fsmpb.Node{Id: node, RaftAddr: "r", GrpcAddr: "g"},
	})
}

func TestInitRegion(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:  "first time",
			empty: true,
			cmd:   initRegion("us-1", "dk-a", "n-a"),
			check: func(t *testing.T, h *harness, res *Result) {
				if r := h.f.Region(); r.GetName() != "us-1" || r.GetActiveDomainKeyId() != "dk-a" {
					t.Errorf("region %v", r)
				}
				if dks := h.f.DomainKeys(); len(dks) != 1 || dks[0].GetId() != "dk-a" || dks[0].GetCreationTimeUnixNano() != t0 {
					t.Errorf("domain keys %v", dks)
				}
				if n, ok := h.f.Node("n-a"); !ok || n.GetRaftAddr() != "r" {
					t.Errorf("node %v", n)
				}
				if res.Key != nil || res.Alias != nil {
					t.Errorf("result %v", res)
				}
			},
		},
		{
			name:    "second time",
			cmd:     initRegion("us-1", "dk-a", "n-a"),
			wantErr: ErrAlreadyExists,
			wantMsg: []string{"region eu-1 is already initialised"},
		},
		{name: "no name", empty: true, cmd: initRegion("", "dk-a", "n-a"), wantErr: ErrInvalidArgument, wantMsg: []string{"InitRegion needs a region name"}},
		{name: "no domain key", empty: true, cmd: initRegion("us-1", "", "n-a"), wantErr: ErrInvalidArgument, wantMsg: []string{"region us-1: InitRegion needs a domain key id"}},
		{name: "no node", empty: true, cmd: initRegion("us-1", "dk-a", ""), wantErr: ErrInvalidArgument, wantMsg: []string{"bootstrapping node's id"}},
	})
	if New(Config{}).Region() != nil {
		t.Error("Region() before InitRegion is not nil")
	}
}

func TestAddDomainKey(t *testing.T) {
	add := func(id string, active bool) *fsmpb.Command {
		return wrap(t0+day, &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: id}, MakeActive: active})
	}
	runApplyCases(t, []applyCase{
		{
			name: "inactive",
			cmd:  add("dk-2", false),
			check: func(t *testing.T, h *harness, res *Result) {
				if dks := h.f.DomainKeys(); len(dks) != 2 || dks[1].GetId() != "dk-2" || dks[1].GetCreationTimeUnixNano() != t0+day {
					t.Errorf("domain keys %v", dks)
				}
				if h.f.Region().GetActiveDomainKeyId() != dk1 {
					t.Error("active domain key changed")
				}
			},
		},
		{
			name: "active",
			cmd:  add("dk-2", true),
			check: func(t *testing.T, h *harness, res *Result) {
				if r := h.f.Region(); r.GetActiveDomainKeyId() != "dk-2" || r.GetName() != regionName {
					t.Errorf("region %v", r)
				}
				// Tokens wrapped under the retired key stay valid for new versions too:
				// a proposal prepared just before the switch must still apply.
				h.mustApply(wrap(t0+day, &fsmpb.RotateKey{KeyId: keyEnabled, Version: newVersion(7, RotationOnDemand)}))
			},
		},
		{name: "existing", cmd: add(dk1, true), wantErr: ErrAlreadyExists, wantMsg: []string{"region eu-1 already has domain key dk-1"}},
		{name: "no id", cmd: add("", true), wantErr: ErrInvalidArgument, wantMsg: []string{"AddDomainKey needs a domain key id"}},
		{name: "before InitRegion", empty: true, cmd: add("dk-2", true), wantErr: ErrInvalidState, wantMsg: []string{"AddDomainKey needs InitRegion first"}},
	})
}

func TestRegisterNode(t *testing.T) {
	register := func(id, raftAddr string) *fsmpb.Command {
		return wrap(t0+hour, &fsmpb.RegisterNode{Node: &fsmpb.Node{Id: id, RaftAddr: raftAddr, GrpcAddr: "g"}})
	}
	runApplyCases(t, []applyCase{
		{
			name: "new node",
			cmd:  register("node-0", "10.0.0.0:7000"),
			check: func(t *testing.T, h *harness, res *Result) {
				nodes := h.f.Nodes()
				if len(nodes) != 2 || nodes[0].GetId() != "node-0" || nodes[1].GetId() != node1 {
					t.Errorf("nodes %v, want sorted node-0, node-1", nodes)
				}
			},
		},
		{
			name: "existing node is updated",
			cmd:  register(node1, "10.9.9.9:7000"),
			check: func(t *testing.T, h *harness, res *Result) {
				if n, _ := h.f.Node(node1); n.GetRaftAddr() != "10.9.9.9:7000" || len(h.f.Nodes()) != 1 {
					t.Errorf("node %v", n)
				}
			},
		},
		{name: "no id", cmd: register("", "a"), wantErr: ErrInvalidArgument, wantMsg: []string{"RegisterNode needs a node id"}},
	})
}

func TestDeregisterNode(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "present",
			cmd:  wrap(t0+hour, &fsmpb.DeregisterNode{Id: node1}),
			check: func(t *testing.T, h *harness, res *Result) {
				if _, ok := h.f.Node(node1); ok || len(h.f.Nodes()) != 0 {
					t.Error("node still registered")
				}
			},
		},
		{name: "absent is a no-op", cmd: wrap(t0+hour, &fsmpb.DeregisterNode{Id: "node-9"})},
		{name: "no id", cmd: wrap(t0+hour, &fsmpb.DeregisterNode{}), wantErr: ErrInvalidArgument, wantMsg: []string{"DeregisterNode needs a node id"}},
	})
}

func setSigningKey(token, dk, pub string) *fsmpb.Command {
	return wrap(t0+hour, &fsmpb.SetRegionSigningKey{Token: []byte(token), DomainKeyId: dk, PublicKey: []byte(pub)})
}

func TestSetRegionSigningKey(t *testing.T) {
	var earlier *fsmpb.Region // the Region() a setup saw, which Apply must not modify
	keyIs := func(t *testing.T, r *fsmpb.Region, token, dk, pub string) {
		t.Helper()
		if string(r.GetSigningKeyToken()) != token || r.GetSigningDomainKeyId() != dk || string(r.GetSigningPublicKey()) != pub {
			t.Errorf("signing key %q under %q, public %q; want %q under %q, public %q",
				r.GetSigningKeyToken(), r.GetSigningDomainKeyId(), r.GetSigningPublicKey(), token, dk, pub)
		}
	}
	first := func(h *harness) {
		h.mustApply(setSigningKey("wrapped-first", dk1, "pub-first"))
		earlier = h.f.Region()
	}
	runApplyCases(t, []applyCase{
		{
			name:  "first",
			setup: func(h *harness) { earlier = h.f.Region() },
			cmd:   setSigningKey("wrapped-first", dk1, "pub-first"),
			check: func(t *testing.T, h *harness, res *Result) {
				r := h.f.Region()
				keyIs(t, r, "wrapped-first", dk1, "pub-first")
				if r.GetName() != regionName || r.GetActiveDomainKeyId() != dk1 || len(r.GetPeerSigningKeys()) != 0 {
					t.Errorf("region %v", r)
				}
				keyIs(t, earlier, "", "", "")
				if res.Key != nil || res.Alias != nil || res.Grant != nil {
					t.Errorf("result %v", res)
				}
			},
		},
		{
			name: "under a domain key added later",
			setup: func(h *harness) {
				h.mustApply(wrap(t0, &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk-2"}}))
			},
			cmd:   setSigningKey("wrapped-2", "dk-2", "pub-2"),
			check: func(t *testing.T, h *harness, res *Result) { keyIs(t, h.f.Region(), "wrapped-2", "dk-2", "pub-2") },
		},
		{
			name:  "the first one wins",
			setup: first,
			cmd:   setSigningKey("wrapped-second", dk1, "pub-second"),
			check: func(t *testing.T, h *harness, res *Result) {
				keyIs(t, h.f.Region(), "wrapped-first", dk1, "pub-first")
				if h.f.Region() != earlier {
					t.Error("a second signing key replaced the region record")
				}
			},
		},
		{
			// Once a key is set the command changes nothing, whatever it carries.
			name:  "after the first, an incomplete one changes nothing",
			setup: first,
			cmd:   setSigningKey("", "dk-unknown", ""),
			check: func(t *testing.T, h *harness, res *Result) { keyIs(t, h.f.Region(), "wrapped-first", dk1, "pub-first") },
		},
		{name: "no token", cmd: setSigningKey("", dk1, "pub"),
			wantErr: ErrInvalidArgument, wantMsg: []string{"SetRegionSigningKey needs a key token"}},
		{name: "no public key", cmd: setSigningKey("wrapped", dk1, ""),
			wantErr: ErrInvalidArgument, wantMsg: []string{"SetRegionSigningKey needs a public key"}},
		{name: "unknown domain key", cmd: setSigningKey("wrapped", "dk-unknown", "pub"),
			wantErr: ErrInvalidArgument, wantMsg: []string{`wrapped under unknown domain key "dk-unknown"`}},
		{name: "no domain key", cmd: setSigningKey("wrapped", "", "pub"),
			wantErr: ErrInvalidArgument, wantMsg: []string{`unknown domain key ""`}},
		{name: "before InitRegion", empty: true, cmd: setSigningKey("wrapped", dk1, "pub"),
			wantErr: ErrInvalidState, wantMsg: []string{"SetRegionSigningKey: region is not initialised"}},
	})
}

func pinPeer(region, pub string) *fsmpb.Command {
	return wrap(t0+hour, &fsmpb.PinPeerRegion{Region: region, PublicKey: []byte(pub)})
}

func TestPinPeerRegion(t *testing.T) {
	var (
		earlier *fsmpb.Region // the Region() a setup saw, which Apply must not modify
		before  []byte        // the state a setup left, for the no-op cases
	)
	pinned := func(regions ...string) func(h *harness) {
		return func(h *harness) {
			for _, r := range regions {
				h.mustApply(pinPeer(r, "pub-"+r))
			}
			earlier, before = h.f.Region(), stateBytes(h.t, h.f)
		}
	}
	var limit []string
	for i := range maxPeerRegions {
		limit = append(limit, fmt.Sprintf("r-%02d", i))
	}
	unchanged := func(t *testing.T, h *harness, res *Result) {
		if !bytes.Equal(before, stateBytes(t, h.f)) {
			t.Error("a repeated pin changed the state")
		}
	}
	runApplyCases(t, []applyCase{
		{
			name:  "pin",
			setup: pinned(),
			cmd:   pinPeer("us-1", "pub-us-1"),
			check: func(t *testing.T, h *harness, res *Result) {
				r := h.f.Region()
				if got := r.GetPeerSigningKeys(); len(got) != 1 || string(got["us-1"]) != "pub-us-1" {
					t.Errorf("pins %q", got)
				}
				if r.GetName() != regionName || r.GetActiveDomainKeyId() != dk1 || len(r.GetSigningKeyToken()) != 0 {
					t.Errorf("region %v", r)
				}
				if len(earlier.GetPeerSigningKeys()) != 0 {
					t.Error("the earlier region record was modified")
				}
			},
		},
		{
			name:  "another region",
			setup: pinned("us-1"),
			cmd:   pinPeer("ap-1", "pub-ap-1"),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.f.Region().GetPeerSigningKeys(); len(got) != 2 || string(got["us-1"]) != "pub-us-1" || string(got["ap-1"]) != "pub-ap-1" {
					t.Errorf("pins %q", got)
				}
				if got := earlier.GetPeerSigningKeys(); len(got) != 1 {
					t.Errorf("the earlier region record was modified: %q", got)
				}
			},
		},
		{name: "the same key again changes nothing", setup: pinned("us-1"), cmd: pinPeer("us-1", "pub-us-1"), check: unchanged},
		{name: "another key for a pinned region", setup: pinned("us-1"), cmd: pinPeer("us-1", "pub-forged"),
			wantErr: ErrInvalidState, wantMsg: []string{"region us-1 is pinned to another signing key"}},
		{name: "this region", cmd: pinPeer(regionName, "pub"),
			wantErr: ErrInvalidArgument, wantMsg: []string{"PinPeerRegion: eu-1 is this region"}},
		{name: "no region", cmd: pinPeer("", "pub"),
			wantErr: ErrInvalidArgument, wantMsg: []string{"PinPeerRegion needs a region"}},
		{name: "no public key", cmd: pinPeer("us-1", ""),
			wantErr: ErrInvalidArgument, wantMsg: []string{"region us-1: no public key"}},
		{name: "no region and no public key", cmd: pinPeer("", ""),
			wantErr: ErrInvalidArgument, wantMsg: []string{"PinPeerRegion needs a region"}},
		{name: "before InitRegion", empty: true, cmd: pinPeer("us-1", "pub"),
			wantErr: ErrInvalidState, wantMsg: []string{"PinPeerRegion: region is not initialised"}},
		{
			name:  "up to the limit",
			setup: pinned(limit[:maxPeerRegions-1]...),
			cmd:   pinPeer(limit[maxPeerRegions-1], "pub"),
			check: func(t *testing.T, h *harness, res *Result) {
				if n := len(h.f.Region().GetPeerSigningKeys()); n != maxPeerRegions {
					t.Errorf("%d pins", n)
				}
			},
		},
		{name: "beyond the limit", setup: pinned(limit...), cmd: pinPeer("us-1", "pub-us-1"),
			wantErr: ErrLimitExceeded, wantMsg: []string{"64 regions are pinned; the limit is 64"}},
		{name: "at the limit, a pinned region's key again", setup: pinned(limit...),
			cmd: pinPeer(limit[0], "pub-"+limit[0]), check: unchanged},
		{name: "at the limit, another key for a pinned region", setup: pinned(limit...),
			cmd:     pinPeer(limit[0], "pub-forged"),
			wantErr: ErrInvalidState, wantMsg: []string{"pinned to another signing key"}},
	})
	if maxPeerRegions != 64 {
		t.Errorf("maxPeerRegions = %d, documented as 64", maxPeerRegions)
	}
}

// TestRegionSigningKeysSurviveRestore: the signing key and pins are in the
// snapshot, and the restored FSM keeps enforcing first-one-wins and pins.
func TestRegionSigningKeysSurviveRestore(t *testing.T) {
	h := newHarness(t)
	h.mustApply(wrap(t0, &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: "dk-2"}, MakeActive: true}))
	h.mustApply(setSigningKey("wrapped-signing", dk1, "pub-eu-1"))
	h.mustApply(pinPeer("us-1", "pub-us-1"))
	h.mustApply(pinPeer("ap-1", "pub-ap-1"))
	snap := snapshotBytes(t, h.f)

	restored := &harness{t: t, f: New(Config{}), index: h.index}
	if err := restored.f.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(restored.f.Region(), h.f.Region()) {
		t.Fatalf("restored region %v, want %v", restored.f.Region(), h.f.Region())
	}
	r := restored.f.Region()
	if string(r.GetSigningKeyToken()) != "wrapped-signing" || r.GetSigningDomainKeyId() != dk1 ||
		string(r.GetSigningPublicKey()) != "pub-eu-1" || len(r.GetPeerSigningKeys()) != 2 ||
		string(r.GetPeerSigningKeys()["us-1"]) != "pub-us-1" || r.GetActiveDomainKeyId() != "dk-2" {
		t.Errorf("restored region %v", r)
	}
	if !bytes.Equal(snap, snapshotBytes(t, restored.f)) {
		t.Error("restored snapshot differs")
	}

	for _, fsm := range []*harness{h, restored} {
		fsm.mustApply(setSigningKey("wrapped-other", "dk-2", "pub-other"))
		fsm.mustApply(pinPeer("us-1", "pub-us-1"))
		checkRejection(t, fsm.apply(pinPeer("ap-1", "pub-forged")), ErrInvalidState, "pinned to another signing key")
		fsm.mustApply(pinPeer("sa-1", "pub-sa-1"))
	}
	if !bytes.Equal(snapshotBytes(t, h.f), snapshotBytes(t, restored.f)) {
		t.Error("original and restored diverge")
	}
	if string(restored.f.Region().GetSigningKeyToken()) != "wrapped-signing" {
		t.Error("the restored FSM took a second signing key")
	}
}

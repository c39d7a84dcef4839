package fsm

import (
	"testing"

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

package pki

import "testing"

func TestPeerPolicyFailsClosed(t *testing.T) {
	node := Identity{Kind: KindNode, Region: "eu-1", NodeID: "n1"}
	principal := Identity{Kind: KindPrincipal, Principal: "admin"}
	cases := []struct {
		opts    []PeerOption
		id      Identity
		allowed bool
	}{
		{nil, principal, true},
		{nil, node, true},
		{[]PeerOption{RequireNode()}, principal, false},
		{[]PeerOption{RequireNode()}, node, true},
		{[]PeerOption{RequireRegion("eu-1")}, node, true},
		{[]PeerOption{RequireRegion("us-1")}, node, false},
		{[]PeerOption{RequireRegion("")}, node, false},
		{[]PeerOption{RequireNodeID("eu-1", "n1")}, node, true},
		{[]PeerOption{RequireNodeID("eu-1", "")}, node, false},
		{[]PeerOption{RequireNodeID("", "n1")}, node, false},
		{[]PeerOption{RequireRegion("eu-1")}, principal, false},
	}
	for i, c := range cases {
		if err := policyOf(c.opts).check(c.id); (err == nil) != c.allowed {
			t.Errorf("case %d: %s: err = %v, want allowed=%v", i, c.id, err, c.allowed)
		}
	}
}

package transport

import (
	"context"
	"testing"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/pki"
	"github.com/trent-kms/trent/transport/policy"
)

func authzServer() *Server {
	return &Server{cfg: Config{NodeID: "node-a", Region: "eu-9"}, fsm: fsm.New(fsm.Config{})}
}

func principalCtx(name string, roles ...string) context.Context {
	return withPeerIdentity(context.Background(), pki.Identity{Kind: pki.KindPrincipal, Principal: name, Roles: roles})
}

// TestPolicyCacheFollowsTheKeyRecord: a changed policy is used at once; a new
// key record with the same policy reuses the parse.
func TestPolicyCacheFollowsTheKeyRecord(t *testing.T) {
	s := authzServer()
	k := &fsmpb.Key{KeyId: "k1", Creator: "alice", Policy: policy.DefaultPolicy("alice")}
	alice, bob := principalCtx("alice"), principalCtx("bob")
	if err := s.authorize(alice, access{action: actionEncrypt, key: k}); err != nil {
		t.Fatal(err)
	}
	first, _ := s.policies.compiled("eu-9", k)
	rotated := &fsmpb.Key{KeyId: "k1", Creator: "alice", Policy: policy.DefaultPolicy("alice"), Description: "rotated"}
	second, _ := s.policies.compiled("eu-9", rotated)
	if first.pol != second.pol {
		t.Error("an unchanged policy was parsed again for a new key record")
	}
	changed := &fsmpb.Key{KeyId: "k1", Creator: "alice", Policy: policy.DefaultPolicy("bob")}
	if err := s.authorize(alice, access{action: actionEncrypt, key: changed}); err == nil {
		t.Error("alice is still allowed after the policy stopped naming her")
	}
	if err := s.authorize(bob, access{action: actionEncrypt, key: changed}); err != nil {
		t.Errorf("bob under the new policy: %v", err)
	}
	legacy := &fsmpb.Key{KeyId: "k2", Creator: "carol"}
	if err := s.authorize(principalCtx("carol"), access{action: actionDisableKey, key: legacy}); err != nil {
		t.Errorf("a key stored without a policy has the default policy of its creator: %v", err)
	}
	if err := s.authorize(bob, access{action: actionDisableKey, key: legacy}); err == nil {
		t.Error("bob may manage carol's key without a policy")
	}
}

// BenchmarkAuthorize is the authorization cost on the data plane: the key
// policy allows the caller (the common case) or only a grant does.
func BenchmarkAuthorize(b *testing.B) {
	s := authzServer()
	k := &fsmpb.Key{KeyId: "k1", Creator: "admin", Policy: policy.DefaultPolicy("app-1")}
	ec := map[string]string{"app": "billing"}
	b.Run("policy", func(b *testing.B) {
		ctx := principalCtx("app-1")
		b.ReportAllocs()
		for b.Loop() {
			if err := s.authorize(ctx, access{action: actionEncrypt, key: k, ec: ec}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("implicit-deny", func(b *testing.B) {
		ctx := principalCtx("app-2")
		b.ReportAllocs()
		for b.Loop() {
			if err := s.authorize(ctx, access{action: actionEncrypt, key: k, ec: ec}); err == nil {
				b.Fatal("allowed")
			}
		}
	})
}

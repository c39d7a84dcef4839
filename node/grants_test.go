package node_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/policy"
)

func (m *matrixRegion) grant(req *kmspb.CreateGrantRequest) *kmspb.CreateGrantResponse {
	m.t.Helper()
	if req.KeyId == "" {
		req.KeyId = m.keyID
	}
	// Through a follower: the write is forwarded, and the grant token is
	// issued by a node that may not have applied the grant yet.
	resp, err := m.kms(m.r.Followers()[0], as("admin")).CreateGrant(ctxT(m.t), req)
	if err != nil {
		m.t.Fatalf("CreateGrant for %s: %v", req.GetGranteePrincipal(), err)
	}
	return resp
}

// everyNode runs do as who on each node.
func (m *matrixRegion) everyNode(who caller, do op) []error {
	var errs []error
	for node := range m.r.Len() {
		errs = append(errs, do(ctxT(m.t), m, m.kms(node, who)))
	}
	return errs
}

func wantAllowedEverywhere(t *testing.T, errs []error, what string) {
	t.Helper()
	for node, err := range errs {
		if err != nil {
			t.Fatalf("%s on node%d: %v", what, node, err)
		}
	}
}

func wantDeniedEverywhere(t *testing.T, errs []error, who caller) {
	t.Helper()
	for _, err := range errs {
		wantDenied(t, err, who)
	}
}

// TestGrantMatrix: grants allow exactly what they list, under their
// constraints, never past an explicit deny, and stop working on every node
// as soon as RetireGrant or RevokeGrant returns.
func TestGrantMatrix(t *testing.T) {
	m := startMatrixRegion(t)
	ctx := ctxT(t)
	x := map[string]string{"app": "x"}
	xPlus := map[string]string{"app": "x", "more": "y"}
	y := map[string]string{"app": "y"}

	gina, hank, mallory := as("gina"), as("hank"), as("mallory")
	wantDenied(t, encryptOp("", x)(ctx, m, m.kms(1, gina)), gina)

	subset := m.grant(&kmspb.CreateGrantRequest{GranteePrincipal: "gina", RetiringPrincipal: "rita",
		Operations: []string{"Encrypt", "DescribeKey"}, Constraints: &kmspb.GrantConstraints{EncryptionContextSubset: x}})
	equals := m.grant(&kmspb.CreateGrantRequest{GranteePrincipal: "hank",
		Operations: []string{"Encrypt"}, Constraints: &kmspb.GrantConstraints{EncryptionContextEquals: x}})
	m.grant(&kmspb.CreateGrantRequest{GranteePrincipal: "mallory", Operations: []string{"Encrypt"}})

	steps := []struct {
		name  string
		who   caller
		do    op
		allow bool
	}{
		{"subset constraint holds with more pairs", gina, encryptOp("", xPlus), true},
		{"subset constraint holds exactly", gina, encryptOp("", x), true},
		{"subset constraint fails", gina, encryptOp("", y), false},
		{"constraints do not apply to DescribeKey", gina, describeOp, true},
		{"operation not in the grant", gina, decryptOp(x), false},
		{"equals constraint holds", hank, encryptOp("", x), true},
		{"equals constraint fails with more pairs", hank, encryptOp("", xPlus), false},
		{"grant never overrides an explicit deny", mallory, encryptOp("", nil), false},
		{"grant is for its grantee only", as("gina-2"), encryptOp("", x), false},
	}
	for i, s := range steps {
		node := i % m.r.Len()
		err := s.do(ctx, m, m.kms(node, s.who))
		if s.allow && err != nil {
			t.Errorf("%s: %s on node%d: %v", s.name, s.who, node, err)
		}
		if !s.allow {
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s: %s on node%d: got %v, want PermissionDenied", s.name, s.who, node, err)
			}
		}
	}

	list, err := m.kms(2, as("admin")).ListGrants(ctx, &kmspb.ListGrantsRequest{KeyId: m.keyID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetGrants()) != 3 {
		t.Fatalf("ListGrants: %d grants, want 3", len(list.GetGrants()))
	}
	retirable, err := m.kms(1, as("rita")).ListRetirableGrants(ctx, &kmspb.ListRetirableGrantsRequest{RetiringPrincipal: "rita"})
	if err != nil || len(retirable.GetGrants()) != 1 || retirable.GetGrants()[0].GetGrantId() != subset.GetGrantId() {
		t.Fatalf("ListRetirableGrants for rita: %v %v", retirable, err)
	}

	// Someone else may not retire gina's grant; rita, its retiring principal, may.
	if _, err := m.kms(1, as("gina")).RetireGrant(ctx, &kmspb.RetireGrantRequest{KeyId: m.keyID, GrantId: subset.GetGrantId()}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("grantee without RetireGrant retiring: got %v, want PermissionDenied", err)
	}
	if _, err := m.kms(2, as("rita")).RetireGrant(ctx, &kmspb.RetireGrantRequest{KeyId: m.keyID, GrantId: subset.GetGrantId()}); err != nil {
		t.Fatal(err)
	}
	wantDeniedEverywhere(t, m.everyNode(gina, encryptOp("", x)), gina)
	for node, err := range m.everyNode(gina, encryptOp("", x, subset.GetGrantToken())) {
		if !strings.Contains(err.Error(), "InvalidGrantTokenException") || !strings.Contains(err.Error(), "retired or revoked") {
			t.Fatalf("retired grant's token on node%d: got %v, want InvalidGrantTokenException", node, err)
		}
	}

	// Revocation by a principal the key policy allows kms:RevokeGrant.
	wantAllowedEverywhere(t, m.everyNode(hank, encryptOp("", x)), "hank before revocation")
	if _, err := m.kms(1, as("alice")).RevokeGrant(ctx, &kmspb.RevokeGrantRequest{KeyId: m.keyID, GrantId: equals.GetGrantId()}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("RevokeGrant by a principal without kms:RevokeGrant: got %v", err)
	}
	if _, err := m.kms(1, as("admin")).RevokeGrant(ctx, &kmspb.RevokeGrantRequest{KeyId: m.keyID, GrantId: equals.GetGrantId()}); err != nil {
		t.Fatal(err)
	}
	wantDeniedEverywhere(t, m.everyNode(hank, encryptOp("", x)), hank)
	if _, err := m.kms(0, as("admin")).RevokeGrant(ctx, &kmspb.RevokeGrantRequest{KeyId: m.keyID, GrantId: equals.GetGrantId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("revoking a revoked grant: got %v, want NotFound", err)
	}
}

// TestGrantTokens: a token carries its grant to a node that has not applied
// it yet; a forged, altered, foreign or revoked grant's token is refused.
func TestGrantTokens(t *testing.T) {
	m := startMatrixRegion(t)
	ctx := ctxT(t)
	ivy := as("ivy")
	g := m.grant(&kmspb.CreateGrantRequest{GranteePrincipal: "ivy", Operations: []string{"Encrypt", "Decrypt"}})
	wantAllowedEverywhere(t, m.everyNode(ivy, encryptOp("", nil, g.GetGrantToken())), "ivy with her token")

	// A grant that exists nowhere yet, with a token made the way a node of
	// the region makes one: it works at once.
	unseen := policy.Grant{ID: strings.Repeat("ab", 32), KeyID: m.keyID, Grantee: "ivy-2", Operations: []string{"Encrypt"},
		Issuer: "admin", CreationTimeUnixNano: time.Now().UnixNano()}
	token := regionGrantToken(t, m, unseen)
	if err := encryptOp("", nil, token)(ctx, m, m.kms(2, as("ivy-2"))); err != nil {
		t.Fatalf("token of a grant the node has not applied: %v", err)
	}
	if err := encryptOp("", nil)(ctx, m, m.kms(2, as("ivy-2"))); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("without the token: got %v, want PermissionDenied", err)
	}

	stale := unseen
	stale.ID = strings.Repeat("cd", 32)
	stale.CreationTimeUnixNano = time.Now().Add(-time.Hour).UnixNano()
	altered := []byte(g.GetGrantToken())
	altered[10] ^= 1
	for name, tok := range map[string]string{
		"altered":       string(altered),
		"garbage":       "not-a-token",
		"foreign MAC":   policy.EncodeGrantToken(unseen, func(b []byte) []byte { return hmacSHA256(make([]byte, 32), b) }),
		"too old":       regionGrantToken(t, m, stale),
		"empty grant":   base64.RawURLEncoding.EncodeToString([]byte("{}")),
		"other grantee": g.GetGrantToken(),
	} {
		who := as("ivy-3")
		err := encryptOp("", nil, tok)(ctx, m, m.kms(1, who))
		if name == "other grantee" {
			wantDenied(t, err, who)
			continue
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "InvalidGrantTokenException") {
			t.Errorf("%s token: got %v, want InvalidGrantTokenException", name, err)
		}
	}

	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = g.GetGrantToken()
	}
	if err := encryptOp("", nil, eleven...)(ctx, m, m.kms(0, ivy)); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "GrantTokens") {
		t.Errorf("11 grant tokens: got %v, want ValidationException naming GrantTokens", err)
	}

	if _, err := m.kms(0, as("admin")).RevokeGrant(ctx, &kmspb.RevokeGrantRequest{KeyId: m.keyID, GrantId: g.GetGrantId()}); err != nil {
		t.Fatal(err)
	}
	for node, err := range m.everyNode(ivy, encryptOp("", nil, g.GetGrantToken())) {
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "retired or revoked") {
			t.Fatalf("revoked grant's token on node%d: got %v, want InvalidGrantTokenException", node, err)
		}
	}
}

// TestGrantsThroughGrants: a grant with CreateGrant lets its grantee create
// narrower grants, never wider ones; Name makes CreateGrant idempotent.
func TestGrantsThroughGrants(t *testing.T) {
	m := startMatrixRegion(t)
	ctx := ctxT(t)
	x := map[string]string{"app": "x"}
	m.grant(&kmspb.CreateGrantRequest{GranteePrincipal: "jack", Operations: []string{"Encrypt", "CreateGrant"},
		Constraints: &kmspb.GrantConstraints{EncryptionContextSubset: x}})
	jack := m.kms(1, as("jack"))

	_, err := jack.CreateGrant(ctx, &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "kim", Operations: []string{"Encrypt"},
		Constraints: &kmspb.GrantConstraints{EncryptionContextEquals: x}})
	if err != nil {
		t.Fatalf("narrower child grant: %v", err)
	}
	wantAllowedEverywhere(t, m.everyNode(as("kim"), encryptOp("", x)), "kim through jack's grant")

	wider := []*kmspb.CreateGrantRequest{
		{KeyId: m.keyID, GranteePrincipal: "kim", Operations: []string{"Decrypt"}, Constraints: &kmspb.GrantConstraints{EncryptionContextEquals: x}},
		{KeyId: m.keyID, GranteePrincipal: "kim", Operations: []string{"Encrypt"}},
	}
	for i, req := range wider {
		if _, err := jack.CreateGrant(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("wider child grant %d: got %v, want InvalidArgument", i, err)
		}
	}
	if _, err := m.kms(1, as("kim")).CreateGrant(ctx, &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Encrypt"}}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("CreateGrant without permission: got %v, want PermissionDenied", err)
	}

	named := &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Encrypt", "Decrypt"}, Name: "deploy-42"}
	first := m.grant(named)
	again := m.grant(&kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Decrypt", "Encrypt"}, Name: "deploy-42"})
	if again.GetGrantId() != first.GetGrantId() {
		t.Fatalf("CreateGrant with the same Name and parameters made a second grant: %s vs %s", again.GetGrantId(), first.GetGrantId())
	}
	if _, err := m.kms(0, as("admin")).CreateGrant(ctx, &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Encrypt"}, DryRun: true}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "DryRunOperationException") {
		t.Fatalf("DryRun: got %v", err)
	}
	list, err := m.kms(0, as("admin")).ListGrants(ctx, &kmspb.ListGrantsRequest{KeyId: m.keyID, GranteePrincipal: "lee"})
	if err != nil || len(list.GetGrants()) != 1 {
		t.Fatalf("grants for lee after a repeat and a dry run: %v %v", list.GetGrants(), err)
	}

	bad := []struct {
		field string
		req   *kmspb.CreateGrantRequest
	}{
		{"GranteePrincipal", &kmspb.CreateGrantRequest{KeyId: m.keyID, Operations: []string{"Encrypt"}}},
		{"GranteePrincipal", &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "team-*", Operations: []string{"Encrypt"}}},
		{"Operations", &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee"}},
		{"Operations[0]", &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Encrpyt"}}},
		{"Constraints", &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Encrypt"},
			Constraints: &kmspb.GrantConstraints{EncryptionContextEquals: x, EncryptionContextSubset: x}}},
		{"Name", &kmspb.CreateGrantRequest{KeyId: m.keyID, GranteePrincipal: "lee", Operations: []string{"Encrypt"}, Name: "no spaces"}},
	}
	for _, c := range bad {
		_, err := m.kms(0, as("admin")).CreateGrant(ctx, c.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.field) {
			t.Errorf("bad %s: got %v, want InvalidArgument naming it", c.field, err)
		}
	}
}

// regionGrantToken makes a token for g as a node of m's region would: with
// the region's grant token secret, unwrapped by a node's HSM.
func regionGrantToken(t *testing.T, m *matrixRegion, g policy.Grant) string {
	t.Helper()
	n := m.r.Node(0)
	region := n.State().Region()
	secret, err := n.HSM().UnwrapKeyToken(context.Background(), region.GetGrantTokenDomainKeyId(), region.GetGrantTokenKey())
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Zero()
	return policy.EncodeGrantToken(g, func(b []byte) []byte { return hmacSHA256(secret.Bytes(), b) })
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

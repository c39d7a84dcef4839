package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// matrixPolicy exercises every part of the policy language a user relies
// on: principals by name, wildcard and role; action lists and wildcards;
// conditions on the encryption context, its keys, the alias and the caller;
// and explicit denies that override allows.
const matrixPolicy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Admin", "Effect": "Allow", "Principal": {"Trent": ["admin", "role/admin"]}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Alice", "Effect": "Allow", "Principal": {"Trent": "alice"}, "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "Teams", "Effect": "Allow", "Principal": {"Trent": "team-*"}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
    {"Sid": "NoTeamDecrypt", "Effect": "Deny", "Principal": {"Trent": "team-*"}, "Action": "kms:Decrypt", "Resource": "*"},
    {"Sid": "DevRole", "Effect": "Allow", "Principal": {"Trent": "role/dev"}, "Action": "kms:GenerateDataKey*", "Resource": "*"},
    {"Sid": "BobBilling", "Effect": "Allow", "Principal": {"Trent": "bob"}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
      "Condition": {"StringEquals": {"kms:EncryptionContext:app": "billing"}}},
    {"Sid": "CarolProd", "Effect": "Allow", "Principal": {"Trent": "carol"}, "Action": "kms:Encrypt", "Resource": "*",
      "Condition": {"StringLike": {"kms:EncryptionContext:env": "prod-*"}}},
    {"Sid": "DaveKeys", "Effect": "Allow", "Principal": {"Trent": "dave"}, "Action": "kms:Encrypt", "Resource": "*",
      "Condition": {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["app", "env"]}, "Null": {"kms:EncryptionContextKeys": "false"}}},
    {"Sid": "ErinAlias", "Effect": "Allow", "Principal": {"Trent": "erin"}, "Action": "kms:Encrypt", "Resource": "*",
      "Condition": {"StringEquals": {"kms:ViaAlias": "alias/matrix"}}},
    {"Sid": "Services", "Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey", "Resource": "*",
      "Condition": {"StringLike": {"kms:CallerPrincipal": "svc-*"}}},
    {"Sid": "MalloryAllowed", "Effect": "Allow", "Principal": {"Trent": "mallory"}, "Action": "kms:Encrypt", "Resource": "*"},
    {"Sid": "MalloryDenied", "Effect": "Deny", "Principal": {"Trent": "mallory"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "OtherKeysOnly", "Effect": "Allow", "Principal": {"Trent": "oscar"}, "Action": "kms:Encrypt", "Resource": "arn:trent:kms:*::key/not-this-one"}
  ]
}`

// caller is who makes a request in the matrix: a principal and its roles.
type caller struct {
	principal string
	roles     []string
}

func (c caller) String() string {
	if len(c.roles) == 0 {
		return c.principal
	}
	return c.principal + "(" + strings.Join(c.roles, ",") + ")"
}

func as(principal string, roles ...string) caller { return caller{principal, roles} }

// matrixRegion is a 3-node region over mutual TLS with one key under
// matrixPolicy, reachable through alias/matrix.
type matrixRegion struct {
	t     *testing.T
	r     *nodetest.Region
	keyID string
	arn   string
	blob  map[string][]byte // ciphertexts made by the admin, by context "k=v"
}

func startMatrixRegion(t *testing.T) *matrixRegion {
	r := nodetest.StartRegion(t, nodetest.Options{})
	ctx := ctxT(t)
	admin := r.KMS(0)
	k, err := admin.CreateKey(ctx, &kmspb.CreateKeyRequest{Description: "policy matrix", Policy: matrixPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m := &matrixRegion{t: t, r: r, keyID: k.GetKeyMetadata().GetKeyId(), arn: k.GetKeyMetadata().GetArn(), blob: map[string][]byte{}}
	if _, err := admin.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/matrix", TargetKeyId: m.keyID}); err != nil {
		t.Fatal(err)
	}
	for _, ec := range []map[string]string{nil, {"app": "billing"}, {"app": "payroll"}, {"app": "x"}} {
		resp, err := admin.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: m.keyID, Plaintext: []byte("secret"), EncryptionContext: ec})
		if err != nil {
			t.Fatal(err)
		}
		m.blob[ctxString(ec)] = resp.GetCiphertextBlob()
	}
	return m
}

func ctxString(ec map[string]string) string {
	var parts []string
	for k, v := range ec {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (m *matrixRegion) kms(node int, c caller) kmspb.KMSClient {
	return kmspb.NewKMSClient(m.r.ConnAs(node, c.principal, c.roles...))
}

// op is one request of the matrix, sent by c to node.
type op func(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error

func encryptOp(keyRef string, ec map[string]string, tokens ...string) op {
	return func(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
		if keyRef == "" {
			keyRef = m.keyID
		}
		_, err := k.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyRef, Plaintext: []byte("x"), EncryptionContext: ec, GrantTokens: tokens})
		return err
	}
}

func decryptOp(ec map[string]string, tokens ...string) op {
	return func(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
		_, err := k.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: m.blob[ctxString(ec)], EncryptionContext: ec, GrantTokens: tokens})
		return err
	}
}

func generateDataKeyOp(withoutPlaintext bool) op {
	return func(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
		if withoutPlaintext {
			_, err := k.GenerateDataKeyWithoutPlaintext(ctx, &kmspb.GenerateDataKeyWithoutPlaintextRequest{KeyId: m.keyID, KeySpec: "AES_256"})
			return err
		}
		_, err := k.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: m.keyID, KeySpec: "AES_256"})
		return err
	}
}

// reEncryptOp re-encrypts the admin's context-free ciphertext under the same key.
func reEncryptOp(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
	_, err := k.ReEncrypt(ctx, &kmspb.ReEncryptRequest{CiphertextBlob: m.blob[""], DestinationKeyId: m.keyID})
	return err
}

func describeOp(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
	_, err := k.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: m.keyID})
	return err
}

func disableOp(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
	_, err := k.DisableKey(ctx, &kmspb.DisableKeyRequest{KeyId: m.keyID})
	return err
}

func getPolicyOp(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
	_, err := k.GetKeyPolicy(ctx, &kmspb.GetKeyPolicyRequest{KeyId: m.keyID})
	return err
}

func deleteAliasOp(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
	_, err := k.DeleteAlias(ctx, &kmspb.DeleteAliasRequest{AliasName: "alias/matrix"})
	return err
}

// wantDenied checks err is AccessDeniedException naming the caller.
func wantDenied(t *testing.T, err error, who caller) {
	t.Helper()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("%s: got %v, want AccessDeniedException", who, err)
	}
	if !strings.Contains(err.Error(), who.principal) {
		t.Fatalf("%s: the refusal does not name the caller: %v", who, err)
	}
}

type matrixCase struct {
	name  string
	who   caller
	do    op
	allow bool
}

// TestPolicyMatrix runs each case against a different node of a 3-node
// region over mutual TLS, so every node enforces the replicated policy.
func TestPolicyMatrix(t *testing.T) {
	m := startMatrixRegion(t)
	billing, payroll := map[string]string{"app": "billing"}, map[string]string{"app": "payroll"}
	cases := []matrixCase{
		{"admin principal may encrypt", as("admin"), encryptOp("", nil), true},
		{"admin role may read the policy", as("root", "admin"), getPolicyOp, true},
		{"named principal, listed action", as("alice"), encryptOp("", nil), true},
		{"named principal, second listed action", as("alice"), decryptOp(nil), true},
		{"named principal, unlisted action", as("alice"), generateDataKeyOp(false), false},
		{"named principal, management action", as("alice"), disableOp, false},
		{"named principal may not read the policy", as("alice"), getPolicyOp, false},
		{"principal wildcard matches", as("team-red"), encryptOp("", nil), true},
		{"principal wildcard needs the literal part", as("teamred"), encryptOp("", nil), false},
		{"explicit deny beats allow (wildcard)", as("team-red"), decryptOp(nil), false},
		{"explicit deny beats allow (named)", as("mallory"), encryptOp("", nil), false},
		{"role grants action wildcard", as("zed", "dev"), generateDataKeyOp(false), true},
		{"role grants second match of action wildcard", as("zed", "dev"), generateDataKeyOp(true), true},
		{"role does not grant other actions", as("zed", "dev"), encryptOp("", nil), false},
		{"same principal without the role", as("zed"), generateDataKeyOp(false), false},
		{"StringEquals on context value holds", as("bob"), encryptOp("", billing), true},
		{"StringEquals on context value fails", as("bob"), encryptOp("", payroll), false},
		{"StringEquals on absent context key", as("bob"), encryptOp("", nil), false},
		{"condition also applies to decrypt", as("bob"), decryptOp(billing), true},
		{"condition refuses decrypt under another context", as("bob"), decryptOp(payroll), false},
		{"StringLike on context value holds", as("carol"), encryptOp("", map[string]string{"env": "prod-eu"}), true},
		{"StringLike on context value fails", as("carol"), encryptOp("", map[string]string{"env": "staging"}), false},
		{"ForAllValues context keys within the set", as("dave"), encryptOp("", map[string]string{"app": "a", "env": "b"}), true},
		{"ForAllValues context keys outside the set", as("dave"), encryptOp("", map[string]string{"app": "a", "x": "b"}), false},
		{"ForAllValues with Null false refuses no context", as("dave"), encryptOp("", nil), false},
		{"ViaAlias holds through the alias", as("erin"), encryptOp("alias/matrix", nil), true},
		{"ViaAlias fails through the key id", as("erin"), encryptOp("", nil), false},
		{"ViaAlias fails through the key ARN", as("erin"), func(ctx context.Context, m *matrixRegion, k kmspb.KMSClient) error {
			return encryptOp(m.arn, nil)(ctx, m, k)
		}, false},
		{"CallerPrincipal pattern with Principal *", as("svc-billing"), describeOp, true},
		{"CallerPrincipal pattern, other action", as("svc-billing"), encryptOp("", nil), false},
		{"CallerPrincipal pattern does not match", as("billing-svc"), describeOp, false},
		{"Resource naming another key", as("oscar"), encryptOp("", nil), false},
		{"principal not in the policy", as("nobody"), describeOp, false},
		{"DeleteAlias is authorized against the alias's key", as("alice"), deleteAliasOp, false},
		{"ReEncrypt needs ReEncryptFrom and ReEncryptTo", as("alice"), reEncryptOp, false},
		{"ReEncrypt with kms:*", as("admin"), reEncryptOp, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := i % m.r.Len()
			err := c.do(ctxT(t), m, m.kms(node, c.who))
			if c.allow {
				if err != nil {
					t.Fatalf("%s on node%d: got %v, want allowed", c.who, node, err)
				}
				return
			}
			wantDenied(t, err, c.who)
		})
	}
	if len(cases) < 30 {
		t.Fatalf("the matrix has %d cases; keep at least 30", len(cases))
	}
}

// TestRestrictivePolicyTakesEffectEverywhereAtOnce: once PutKeyPolicy
// returns, no node serves a request the new policy forbids.
func TestRestrictivePolicyTakesEffectEverywhereAtOnce(t *testing.T) {
	m := startMatrixRegion(t)
	ctx := ctxT(t)
	for node := range m.r.Len() {
		if err := encryptOp("", nil)(ctx, m, m.kms(node, as("alice"))); err != nil {
			t.Fatalf("node%d before the change: %v", node, err)
		}
	}
	for round := range 5 {
		without := strings.Replace(matrixPolicy, `"Principal": {"Trent": "alice"}`, `"Principal": {"Trent": "alice-`+fmt.Sprint(round)+`"}`, 1)
		writer := round % m.r.Len()
		if _, err := m.kms(writer, as("admin")).PutKeyPolicy(ctx, &kmspb.PutKeyPolicyRequest{KeyId: m.keyID, Policy: without}); err != nil {
			t.Fatal(err)
		}
		for node := range m.r.Len() {
			wantDenied(t, encryptOp("", nil)(ctx, m, m.kms(node, as("alice"))), as("alice"))
		}
		if _, err := m.kms(writer, as("admin")).PutKeyPolicy(ctx, &kmspb.PutKeyPolicyRequest{KeyId: m.keyID, Policy: matrixPolicy}); err != nil {
			t.Fatal(err)
		}
		for node := range m.r.Len() {
			if err := encryptOp("", nil)(ctx, m, m.kms(node, as("alice"))); err != nil {
				t.Fatalf("round %d node%d after restoring the policy: %v", round, node, err)
			}
		}
	}
}

// TestKeyPolicyDocumentRules covers what PutKeyPolicy and GetKeyPolicy
// promise: byte-for-byte storage, the default policy, the lockout check and
// malformed documents refused with the path of the offending element.
func TestKeyPolicyDocumentRules(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	ctx := ctxT(t)
	app := kmspb.NewKMSClient(r.ConnAs(0, "app-1"))
	k, err := app.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := k.GetKeyMetadata().GetKeyId()

	def, err := app.GetKeyPolicy(ctx, &kmspb.GetKeyPolicyRequest{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"app-1"`, `"role/admin"`, `"kms:*"`} {
		if !strings.Contains(def.GetPolicy(), want) {
			t.Errorf("default policy lacks %s:\n%s", want, def.GetPolicy())
		}
	}
	if def.GetPolicyName() != "default" {
		t.Errorf("PolicyName = %q, want default", def.GetPolicyName())
	}
	if _, err := r.KMS(0).DisableKey(ctx, &kmspb.DisableKeyRequest{KeyId: id}); err != nil {
		t.Errorf("the admin role may manage any key under the default policy: %v", err)
	}
	if _, err := kmspb.NewKMSClient(r.ConnAs(0, "app-2")).DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: id}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("another principal under the default policy: got %v, want PermissionDenied", err)
	}

	// Odd spacing and key order survive: infrastructure-as-code tools compare bytes.
	stored := "{ \"Statement\" : [ {\"Effect\":\"Allow\", \"Sid\":\"x\",\n\t\"Principal\": {\"Trent\": \"app-1\"}, \"Action\": \"kms:*\", \"Resource\": \"*\"} ],\n \"Version\": \"2012-10-17\" }\n"
	if _, err := app.PutKeyPolicy(ctx, &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: stored}); err != nil {
		t.Fatal(err)
	}
	got, err := app.GetKeyPolicy(ctx, &kmspb.GetKeyPolicyRequest{KeyId: id, PolicyName: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetPolicy() != stored {
		t.Fatalf("GetKeyPolicy changed the document:\n got %q\nwant %q", got.GetPolicy(), stored)
	}

	lockout := strings.Replace(stored, `"app-1"`, `"someone-else"`, 1)
	bad := []struct {
		name string
		req  *kmspb.PutKeyPolicyRequest
		code codes.Code
		msg  string
	}{
		{"lockout", &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: lockout}, codes.InvalidArgument, "MalformedPolicyDocumentException"},
		{"bad effect", &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: strings.Replace(stored, `"Allow"`, `"Permit"`, 1)}, codes.InvalidArgument, "Statement[0].Effect"},
		{"unknown action", &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: strings.Replace(stored, `"kms:*"`, `"kms:Encrpyt"`, 1)}, codes.InvalidArgument, "Statement[0].Action"},
		{"not JSON", &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: "{"}, codes.InvalidArgument, "MalformedPolicyDocumentException"},
		{"empty", &kmspb.PutKeyPolicyRequest{KeyId: id}, codes.InvalidArgument, "Policy"},
		{"policy name", &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: stored, PolicyName: "other"}, codes.InvalidArgument, "PolicyName"},
		{"unknown key", &kmspb.PutKeyPolicyRequest{KeyId: "11111111-2222-3333-4444-555555555555", Policy: stored}, codes.NotFound, "NotFoundException"},
	}
	for _, c := range bad {
		_, err := app.PutKeyPolicy(ctx, c.req)
		if status.Code(err) != c.code || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want %v with %q", c.name, err, c.code, c.msg)
		}
	}
	after, err := app.GetKeyPolicy(ctx, &kmspb.GetKeyPolicyRequest{KeyId: id})
	if err != nil || after.GetPolicy() != stored {
		t.Fatalf("a refused PutKeyPolicy changed the policy: %v %q", err, after.GetPolicy())
	}

	// The lockout check can be bypassed on purpose; the admin role keeps no
	// special power over a key whose policy does not name it.
	if _, err := app.PutKeyPolicy(ctx, &kmspb.PutKeyPolicyRequest{KeyId: id, Policy: lockout, BypassPolicyLockoutSafetyCheck: true}); err != nil {
		t.Fatal(err)
	}
	_, err = app.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: id})
	wantDenied(t, err, as("app-1"))

	// CreateKey applies the same rules to a policy given at creation.
	if _, err := app.CreateKey(ctx, &kmspb.CreateKeyRequest{Policy: lockout}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateKey with a lockout policy: got %v, want InvalidArgument", err)
	}
	if _, err := app.CreateKey(ctx, &kmspb.CreateKeyRequest{Policy: `{"Version":"2012-10-17","Statement":[]`}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreateKey with a malformed policy: got %v, want InvalidArgument", err)
	}
	if _, err := app.CreateKey(ctx, &kmspb.CreateKeyRequest{Policy: stored}); err != nil {
		t.Errorf("CreateKey with a valid policy: %v", err)
	}
}

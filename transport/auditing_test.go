package transport_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
)

// wantRecord is what a test expects of one audit record.
type wantRecord struct {
	op, principal, keyID, version, alias, grant string
	ec                                          map[string]string
	outcome, errorCode                          string
}

// auditLog lists the records of node i's audit log after checking that
// the log verifies.
func auditLog(t *testing.T, r *nodetest.Region, i int) []audit.Record {
	t.Helper()
	path := filepath.Join(r.DataDir(i), "audit.log")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := audit.Verify(f)
	if err != nil {
		t.Fatalf("node%d's audit log does not verify: %v", i, err)
	}
	recs, err := audit.Tail(path, 0, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("Verify counted %d records, Tail read %d", n, len(recs))
	}
	return recs
}

func checkRecords(t *testing.T, got []audit.Record, want []wantRecord, node, region string) {
	t.Helper()
	ids := map[string]bool{}
	for i, r := range got {
		if i >= len(want) {
			t.Errorf("record %d is unexpected: %+v", i+1, r)
			continue
		}
		w := want[i]
		if w.outcome == "" {
			w.outcome = audit.OutcomeAllowed
		}
		if w.principal == "" {
			w.principal = "admin"
		}
		if r.Operation != w.op || r.Principal != w.principal || r.KeyID != w.keyID || r.KeyVersion != w.version ||
			r.Alias != w.alias || r.Outcome != w.outcome || r.ErrorCode != w.errorCode || !reflect.DeepEqual(r.EncryptionContext, w.ec) ||
			r.GrantID != w.grant {
			t.Errorf("record %d:\n got  op=%s principal=%s key=%s version=%s alias=%s grant=%s ec=%v outcome=%s code=%s\n want op=%s principal=%s key=%s version=%s alias=%s grant=%s ec=%v outcome=%s code=%s",
				i+1, r.Operation, r.Principal, r.KeyID, r.KeyVersion, r.Alias, r.GrantID, r.EncryptionContext, r.Outcome, r.ErrorCode,
				w.op, w.principal, w.keyID, w.version, w.alias, w.grant, w.ec, w.outcome, w.errorCode)
		}
		if r.Node != node || r.Region != region || !strings.HasPrefix(r.SourceAddr, "127.0.0.1:") || len(r.RequestID) != 16 || ids[r.RequestID] {
			t.Errorf("record %d: node %q region %q source %q request id %q", i+1, r.Node, r.Region, r.SourceAddr, r.RequestID)
		}
		ids[r.RequestID] = true
	}
	if len(got) < len(want) {
		t.Errorf("%d records, want %d; first missing: %+v", len(got), len(want), want[len(got)])
	}
}

// TestEveryRequestIsAuditedOnce sends a mix of requests, allowed, refused
// and failed, and finds exactly one record per request, in order, with what
// the request named and how it ended, and no secret in the audit log or the
// node's log.
func TestEveryRequestIsAuditedOnce(t *testing.T) {
	var logs testlog.Buffer
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	c, ctx := r.KMS(0), ctxT(t)
	var want []wantRecord
	var secrets [][]byte
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	failsWith := func(err error, code codes.Code) {
		t.Helper()
		if status.Code(err) != code {
			t.Fatalf("err = %v, want code %v", err, code)
		}
	}

	a, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	must(err)
	keyA, versionA := a.GetKeyMetadata().GetKeyId(), a.GetKeyMetadata().GetCurrentKeyMaterialId()
	want = append(want, wantRecord{op: "CreateKey", keyID: keyA, version: versionA})

	_, err = c.CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/app", TargetKeyId: keyA})
	must(err)
	want = append(want, wantRecord{op: "CreateAlias", keyID: keyA, alias: "alias/app"})

	ec := map[string]string{"tenant": "t-1", "purpose": "audit test"}
	plaintext := []byte("audit-test-plaintext-3f9c1e")
	secrets = append(secrets, plaintext)
	enc, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: "alias/app", Plaintext: plaintext, EncryptionContext: ec})
	must(err)
	want = append(want, wantRecord{op: "Encrypt", keyID: keyA, version: versionA, alias: "alias/app", ec: ec})

	dec, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob(), EncryptionContext: ec})
	must(err)
	if !bytes.Equal(dec.GetPlaintext(), plaintext) {
		t.Fatal("decrypt did not return the plaintext")
	}
	want = append(want, wantRecord{op: "Decrypt", keyID: keyA, version: versionA, ec: ec})

	wrongEC := map[string]string{"tenant": "t-2"}
	_, err = c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob(), EncryptionContext: wrongEC})
	failsWith(err, codes.InvalidArgument)
	want = append(want, wantRecord{op: "Decrypt", keyID: keyA, version: versionA, ec: wrongEC, outcome: audit.OutcomeError, errorCode: "InvalidCiphertextException"})

	dk, err := c.GenerateDataKey(ctx, &kmspb.GenerateDataKeyRequest{KeyId: keyA, KeySpec: "AES_256", EncryptionContext: ec})
	must(err)
	secrets = append(secrets, dk.GetPlaintext())
	want = append(want, wantRecord{op: "GenerateDataKey", keyID: keyA, version: versionA, ec: ec})

	_, err = c.GenerateDataKeyWithoutPlaintext(ctx, &kmspb.GenerateDataKeyWithoutPlaintextRequest{KeyId: "alias/app", NumberOfBytes: 24})
	must(err)
	want = append(want, wantRecord{op: "GenerateDataKeyWithoutPlaintext", keyID: keyA, version: versionA, alias: "alias/app"})

	b, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{ProtectionLevel: "HSM"})
	must(err)
	keyB := b.GetKeyMetadata().GetKeyId()
	want = append(want, wantRecord{op: "CreateKey", keyID: keyB, version: b.GetKeyMetadata().GetCurrentKeyMaterialId()})

	dstEC := map[string]string{"moved": "yes"}
	_, err = c.ReEncrypt(ctx, &kmspb.ReEncryptRequest{CiphertextBlob: enc.GetCiphertextBlob(), SourceEncryptionContext: ec, DestinationKeyId: keyB, DestinationEncryptionContext: dstEC})
	must(err)
	want = append(want, wantRecord{op: "ReEncrypt", keyID: keyA, version: versionA,
		ec: map[string]string{"source:tenant": "t-1", "source:purpose": "audit test", "destination:moved": "yes"}})

	_, err = c.RotateKeyOnDemand(ctx, &kmspb.RotateKeyOnDemandRequest{KeyId: keyB})
	must(err)
	desc, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: keyB})
	must(err)
	rotatedB := desc.GetKeyMetadata().GetCurrentKeyMaterialId()
	want = append(want, wantRecord{op: "RotateKeyOnDemand", keyID: keyB, version: rotatedB}, wantRecord{op: "DescribeKey", keyID: keyB})

	_, err = c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: "alias/missing"})
	failsWith(err, codes.NotFound)
	want = append(want, wantRecord{op: "DescribeKey", alias: "alias/missing", outcome: audit.OutcomeError, errorCode: "NotFoundException"})

	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: a.GetKeyMetadata().GetArn(), Plaintext: plaintext})
	must(err)
	want = append(want, wantRecord{op: "Encrypt", keyID: keyA, version: versionA}) // the bare id, not the ARN

	_, err = c.DisableKey(ctx, &kmspb.DisableKeyRequest{KeyId: keyA})
	must(err)
	want = append(want, wantRecord{op: "DisableKey", keyID: keyA})

	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyA, Plaintext: plaintext})
	failsWith(err, codes.FailedPrecondition)
	want = append(want, wantRecord{op: "Encrypt", keyID: keyA, outcome: audit.OutcomeError, errorCode: "DisabledException"})

	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{Plaintext: plaintext})
	failsWith(err, codes.InvalidArgument)
	want = append(want, wantRecord{op: "Encrypt", outcome: audit.OutcomeError, errorCode: "ValidationException"})

	rnd, err := c.GenerateRandom(ctx, &kmspb.GenerateRandomRequest{NumberOfBytes: 48})
	must(err)
	secrets = append(secrets, rnd.GetPlaintext())
	want = append(want, wantRecord{op: "GenerateRandom"})

	_, err = c.ListKeys(ctx, &kmspb.ListKeysRequest{})
	must(err)
	want = append(want, wantRecord{op: "ListKeys"})

	_, err = r.Cluster(0).Status(ctx, &kmspb.ClusterStatusRequest{})
	must(err)
	want = append(want, wantRecord{op: "Status"})

	// Another principal: served through a grant, refused by the key policy,
	// refused on the Cluster service (it needs the admin role).
	bob := r.ConnAs(0, "bob")
	g, err := c.CreateGrant(ctx, &kmspb.CreateGrantRequest{KeyId: keyB, GranteePrincipal: "bob", Operations: []string{"Encrypt"}})
	must(err)
	want = append(want, wantRecord{op: "CreateGrant", keyID: keyB, grant: g.GetGrantId()})
	plaintextBob := []byte("bobs-own-secret-8d2a")
	secrets = append(secrets, plaintextBob)
	_, err = kmspb.NewKMSClient(bob).Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyB, Plaintext: plaintextBob})
	must(err)
	want = append(want, wantRecord{op: "Encrypt", principal: "bob", keyID: keyB, version: rotatedB, grant: g.GetGrantId()})
	_, err = kmspb.NewKMSClient(bob).DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: keyB})
	failsWith(err, codes.PermissionDenied)
	want = append(want, wantRecord{op: "DescribeKey", principal: "bob", keyID: keyB, outcome: audit.OutcomeDenied, errorCode: "AccessDeniedException"})
	_, err = kmspb.NewClusterClient(bob).RemoveNode(ctx, &kmspb.RemoveNodeRequest{NodeId: "node0"})
	failsWith(err, codes.PermissionDenied)
	want = append(want, wantRecord{op: "RemoveNode", principal: "bob", outcome: audit.OutcomeDenied, errorCode: "AccessDeniedException"})

	_, err = c.DeleteAlias(ctx, &kmspb.DeleteAliasRequest{AliasName: "alias/app"})
	must(err)
	want = append(want, wantRecord{op: "DeleteAlias", keyID: keyA, alias: "alias/app"})

	checkRecords(t, auditLog(t, r, 0), want, "node0", nodetest.RegionName)

	// Plaintexts, data keys and random bytes appear nowhere, in any of the
	// encodings a log might use.
	auditBytes, err := os.ReadFile(filepath.Join(r.DataDir(0), "audit.log"))
	must(err)
	for _, s := range secrets {
		for _, form := range [][]byte{s, []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s)), []byte(hex.EncodeToString(s))} {
			if bytes.Contains(auditBytes, form) {
				t.Errorf("the audit log contains a secret the test used (%q)", form)
			}
			if bytes.Contains(logs.Bytes(), form) {
				t.Errorf("the node's log contains a secret the test used (%q)", form)
			}
		}
	}
	if !bytes.Contains(logs.Bytes(), []byte("audit log open")) {
		t.Error("the node's log was not captured; the secrets check above proves nothing")
	}
}

package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
)

// verifiedAuditLog checks that the audit log at path verifies and returns
// its records.
func verifiedAuditLog(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := audit.Verify(f); err != nil {
		t.Fatalf("%s does not verify: %v", path, err)
	}
	recs, err := audit.Tail(path, 0, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// summary is the part of a record these tests check; transport's tests
// check every field.
func summary(r audit.Record) string {
	return fmt.Sprintf("%s key=%s %s %s", r.Operation, r.KeyID, r.Outcome, r.ErrorCode)
}

// TestEachRequestIsAuditedOnceOnTheNodeItWasSentTo sends reads, local and
// forwarded writes and failures to the nodes of a 3-node region: each node's
// log holds exactly the requests sent to it (a forwarded write is not
// audited again by the leader), and every log verifies until a byte of it
// changes.
func TestEachRequestIsAuditedOnceOnTheNodeItWasSentTo(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	leader, followers := r.Leader(), r.Followers()
	f0, f1 := followers[0], followers[1]
	want := map[int][]string{}
	sent := func(i int, op, keyID, outcome, code string) {
		want[i] = append(want[i], strings.TrimSpace(fmt.Sprintf("%s key=%s %s %s", op, keyID, outcome, code)))
	}
	ctx := ctxT(t)

	keyID := createKey(t, r.KMS(f0), "") // forwarded to the leader
	sent(f0, "CreateKey", keyID, "allowed", "")
	blob := encrypt(t, r.KMS(f1), keyID, "served by a follower")
	sent(f1, "Encrypt", keyID, "allowed", "")
	decrypt(t, r.KMS(leader), blob)
	sent(leader, "Decrypt", keyID, "allowed", "")
	if _, err := r.KMS(f1).CreateAlias(ctx, &kmspb.CreateAliasRequest{AliasName: "alias/forwarded", TargetKeyId: keyID}); err != nil {
		t.Fatal(err)
	}
	sent(f1, "CreateAlias", keyID, "allowed", "")
	if _, err := r.KMS(f0).DisableKey(ctx, &kmspb.DisableKeyRequest{KeyId: keyID}); err != nil {
		t.Fatal(err)
	}
	sent(f0, "DisableKey", keyID, "allowed", "")
	if _, err := r.KMS(leader).Encrypt(ctx, &kmspb.EncryptRequest{KeyId: keyID, Plaintext: []byte("x")}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Encrypt with a disabled key: %v", err)
	}
	sent(leader, "Encrypt", keyID, "error", "DisabledException")
	if _, err := r.KMS(leader).EnableKey(ctx, &kmspb.EnableKeyRequest{KeyId: keyID}); err != nil {
		t.Fatal(err)
	}
	sent(leader, "EnableKey", keyID, "allowed", "")
	// Cluster requests are audited too; a follower passes RemoveNode to the
	// leader over the Internal service, which is not audited again.
	if _, err := r.Cluster(f1).RemoveNode(ctx, &kmspb.RemoveNodeRequest{NodeId: "ghost"}); status.Code(err) != codes.NotFound {
		t.Fatalf("RemoveNode of a node that is not a member: %v", err)
	}
	sent(f1, "RemoveNode", "", "error", "NotFoundException")
	for i := range r.Len() {
		if _, err := r.Cluster(i).Status(ctx, &kmspb.ClusterStatusRequest{}); err != nil {
			t.Fatal(err)
		}
		sent(i, "Status", "", "allowed", "")
	}

	for i := range r.Len() {
		var got []string
		for _, rec := range verifiedAuditLog(t, filepath.Join(r.DataDir(i), "audit.log")) {
			got = append(got, strings.TrimSpace(summary(rec)))
			if rec.Node != fmt.Sprintf("node%d", i) {
				t.Errorf("node%d's log has a record of node %q", i, rec.Node)
			}
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("node%d's audit log:\n got  %q\n want %q", i, got, want[i])
		}
	}

	// Change one byte of the second record: Verify breaks there.
	r.Stop(f0)
	path := filepath.Join(r.DataDir(f0), "audit.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.IndexByte(data, '\n') + 1
	i := second + bytes.Index(data[second:], []byte(`"DisableKey"`)) + 1
	data[i] = 'd'
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := audit.Verify(f)
	var broken *audit.BrokenLinkError
	if !errors.As(err, &broken) || broken.Line != 2 || broken.Seq != 2 || n != 1 {
		t.Fatalf("Verify of a log with a changed byte in record 2 = %d, %v; want a broken link at line 2", n, err)
	}
}

// A node does not start on an audit log that does not verify: it must not
// chain new records onto a tampered log.
func TestNodeRefusesToStartOnATamperedAuditLog(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(`{"seq":1,"forged":true}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodetest.StartTimeout)
	defer cancel()
	n, err := node.Start(ctx, node.Config{DataDir: dir, DevTLS: true, Bootstrap: true})
	if err == nil {
		_ = n.Close(ctx)
		t.Fatal("node started on a tampered audit log")
	}
	if !errors.Is(err, audit.ErrBroken) {
		t.Fatalf("err = %v; want one matching audit.ErrBroken", err)
	}

	// What the README says to do: move the log aside and start again.
	if err := os.Rename(filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.log.tampered")); err != nil {
		t.Fatal(err)
	}
	n, err = node.Start(ctx, node.Config{DataDir: dir, DevTLS: true, Bootstrap: true})
	if err != nil {
		t.Fatalf("second start after moving the log aside: %v", err)
	}
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAuditLogPathIsConfigurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trent-audit.log")
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
		cfg.AuditLogPath = path
	}})
	createKey(t, r.KMS(0), "")
	if recs := verifiedAuditLog(t, path); len(recs) != 1 || recs[0].Operation != "CreateKey" {
		t.Fatalf("records = %+v; want the one CreateKey", recs)
	}
	if _, err := os.Stat(filepath.Join(r.DataDir(0), "audit.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a log was written to the default path too: %v", err)
	}
}

// With a background sync, every request still has its record in the log as
// soon as it is answered (written, not yet synced), and the log verifies.
func TestAuditSyncIntervalRecordsEveryAnsweredRequest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trent-audit.log")
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
		cfg.AuditLogPath = path
		cfg.AuditSyncInterval = 10 * time.Second // one background sync at the first write, then none during the test
	}})
	id := createKey(t, r.KMS(0), "")
	for range 5 {
		if _, err := r.KMS(0).Encrypt(context.Background(), &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("p")}); err != nil {
			t.Fatal(err)
		}
	}
	recs := verifiedAuditLog(t, path)
	var got []string
	for _, rec := range recs {
		got = append(got, rec.Operation)
	}
	if want := "CreateKey Encrypt Encrypt Encrypt Encrypt Encrypt"; strings.Join(got, " ") != want {
		t.Fatalf("records %v; want %s", got, want)
	}
}

func TestAuditSyncIntervalIsValidated(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, 11 * time.Second} {
		cfg := node.Config{DataDir: t.TempDir(), AuditSyncInterval: d}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "audit sync interval") {
			t.Errorf("AuditSyncInterval %v: Validate = %v, want an audit sync interval error", d, err)
		}
	}
}

package transport_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

var mrkIDPattern = regexp.MustCompile(`^mrk-[0-9a-f]{32}$`)

// wantRefused checks err's code, AWS exception name and that the message
// mentions each of the given texts.
func wantRefused(t *testing.T, err error, code codes.Code, exception string, mentions ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.HasPrefix(st.Message(), exception+": ") {
		t.Fatalf("got %v, want %v %s", err, code, exception)
	}
	for _, m := range mentions {
		if !strings.Contains(st.Message(), m) {
			t.Fatalf("message %q does not mention %q", st.Message(), m)
		}
	}
}

// createMRK creates a multi-region key with the given policy ("" for the
// default) and returns its id.
func createMRK(t *testing.T, c kmspb.KMSClient, policy string) string {
	t.Helper()
	created, err := c.CreateKey(ctxT(t), &kmspb.CreateKeyRequest{MultiRegion: true, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return created.GetKeyMetadata().GetKeyId()
}

// ackReplica plays the replica region's replicator, which confirms to the
// primary that the replica holds the key up to seq. This repository's
// regions run no replicator in these tests, so the test proposes the ack
// itself, as the primary's leader would on receiving it.
func ackReplica(t *testing.T, r *nodetest.Region, now time.Time, keyID, region string, epoch, seq uint64) {
	t.Helper()
	data, err := fsm.Encode(&fsmpb.Command{
		TimeUnixNano: now.UnixNano(),
		Principal:    "replicator",
		Op:           &fsmpb.Command_AckReplica{AckReplica: &fsmpb.AckReplica{KeyId: keyID, Region: region, Epoch: epoch, Seq: seq}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Node(r.Leader()).Raft().Apply(ctxT(t), data)
	if err != nil {
		t.Fatal(err)
	}
	if res := out.(*fsm.Result); res.Err != nil {
		t.Fatal(res.Err)
	}
}

// TestMultiRegionKeyThroughTheAPI follows one multi-region key in one
// region through creation, replication to a region that never answers,
// rotation, a planned and a forced change of its primary.
func TestMultiRegionKeyThroughTheAPI(t *testing.T) {
	clock := &nodetest.Clock{}
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1, Clock: clock})
	c := r.KMS(0)
	ctx := ctxT(t)

	created, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{MultiRegion: true, Description: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	md := created.GetKeyMetadata()
	id := md.GetKeyId()
	if !mrkIDPattern.MatchString(id) || !md.GetMultiRegion() {
		t.Fatalf("CreateKey(MultiRegion) = id %q, MultiRegion %v; want mrk- and 32 hex digits, true", id, md.GetMultiRegion())
	}
	cfg := describe(t, c, id).GetMultiRegionConfiguration()
	if cfg.GetMultiRegionKeyType() != "PRIMARY" || cfg.GetPrimaryKey().GetRegion() != nodetest.RegionName ||
		cfg.GetPrimaryKey().GetArn() != "arn:trent:kms:test-1::key/"+id || len(cfg.GetReplicaKeys()) != 0 || cfg.GetEpoch() != 1 {
		t.Fatalf("new key's MultiRegionConfiguration = %v", cfg)
	}
	if single, _ := c.CreateKey(ctx, &kmspb.CreateKeyRequest{}); single.GetKeyMetadata().GetMultiRegion() ||
		single.GetKeyMetadata().GetMultiRegionConfiguration() != nil || mrkIDPattern.MatchString(single.GetKeyMetadata().GetKeyId()) {
		t.Fatalf("a single-region key looks multi-region: %v", single.GetKeyMetadata())
	}

	rep, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{
		KeyId: id, ReplicaRegion: "eu-2", Description: "orders in eu-2",
		Tags: []*kmspb.Tag{{TagKey: "team", TagValue: "payments"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rmd := rep.GetReplicaKeyMetadata()
	if rmd.GetKeyId() != id || rmd.GetArn() != "arn:trent:kms:eu-2::key/"+id || rmd.GetRegion() != "eu-2" ||
		rmd.GetKeyState() != "Creating" || rmd.GetEnabled() || rmd.GetDescription() != "orders in eu-2" ||
		rmd.GetMultiRegionConfiguration().GetMultiRegionKeyType() != "REPLICA" ||
		rmd.GetMultiRegionConfiguration().GetPrimaryKey().GetRegion() != nodetest.RegionName {
		t.Fatalf("ReplicaKeyMetadata = %v", rmd)
	}
	if !strings.Contains(rep.GetReplicaPolicy(), `"admin"`) || len(rep.GetReplicaTags()) != 1 {
		t.Fatalf("ReplicateKey without a policy: ReplicaPolicy %q (want the default for the caller), ReplicaTags %v", rep.GetReplicaPolicy(), rep.GetReplicaTags())
	}
	if got := describe(t, c, id); got.GetKeyState() != "Enabled" || got.GetDescription() != "orders" {
		t.Fatalf("the replica's description or state leaked into the primary: %v", got)
	}

	// No replicator answers for eu-2: the replica stays CREATING and its
	// lag grows with the clock.
	clock.Advance(time.Hour)
	cfg = describe(t, c, id).GetMultiRegionConfiguration()
	if len(cfg.GetReplicaKeys()) != 1 {
		t.Fatalf("ReplicaKeys = %v", cfg.GetReplicaKeys())
	}
	replica := cfg.GetReplicaKeys()[0]
	if replica.GetRegion() != "eu-2" || replica.GetArn() != "arn:trent:kms:eu-2::key/"+id || replica.GetStatus() != "CREATING" ||
		replica.GetReplicationLagMillis() < time.Hour.Milliseconds() || replica.AckedChange == nil || replica.GetAckedChange() != 0 {
		t.Fatalf("replica = %v; want eu-2 CREATING, acked 0, at least an hour behind", replica)
	}
	_, err = c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "eu-2"})
	wantRefused(t, err, codes.AlreadyExists, "AlreadyExistsException", "eu-2")

	// A rotation stays pending until every replica has it: Encrypt keeps
	// the old version, in every region alike.
	first := describe(t, c, id).GetCurrentKeyMaterialId()
	if _, err := c.RotateKeyOnDemand(ctx, &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	rotations, err := c.ListKeyRotations(ctx, &kmspb.ListKeyRotationsRequest{KeyId: id})
	if err != nil || len(rotations.GetRotations()) != 1 {
		t.Fatalf("ListKeyRotations = %v, %v; want the new version listed", rotations, err)
	}
	second := rotations.GetRotations()[0].GetKeyMaterialId()
	if got := describe(t, c, id).GetCurrentKeyMaterialId(); got != first {
		t.Fatalf("CurrentKeyMaterialId = %s after rotating with a replica behind, want the old %s", got, first)
	}
	encryptedWith := func() string {
		t.Helper()
		enc, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := c.Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: enc.GetCiphertextBlob()})
		if err != nil {
			t.Fatal(err)
		}
		return dec.GetKeyMaterialId()
	}
	if got := encryptedWith(); got != first {
		t.Fatalf("Encrypt used material %s while the rotation is pending, want %s", got, first)
	}
	// Once the replica confirms the rotation, Encrypt uses it. Making it
	// current is one more shared change, which the replica confirms too.
	sharedChange := func() uint64 { return describe(t, c, id).GetMultiRegionConfiguration().GetSharedChange() }
	ackReplica(t, r, clock.Now(), id, "eu-2", 1, sharedChange())
	if got := encryptedWith(); got != second {
		t.Fatalf("Encrypt used material %s after every replica has the rotation, want %s", got, second)
	}
	ackReplica(t, r, clock.Now(), id, "eu-2", 1, sharedChange())
	cfg = describe(t, c, id).GetMultiRegionConfiguration()
	if st := cfg.GetReplicaKeys()[0]; st.GetStatus() != "ACTIVE" || st.GetReplicationLagMillis() != 0 || st.GetAckedChange() != cfg.GetSharedChange() {
		t.Fatalf("caught-up replica = %v, want ACTIVE with no lag", st)
	}

	// Planned switch to the (now active) replica: this region becomes a
	// replica of eu-2 at once.
	if _, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: "eu-2"}); err != nil {
		t.Fatal(err)
	}
	cfg = describe(t, c, id).GetMultiRegionConfiguration()
	if cfg.GetMultiRegionKeyType() != "REPLICA" || cfg.GetPrimaryKey().GetRegion() != "eu-2" || cfg.GetEpoch() != 2 ||
		len(cfg.GetReplicaKeys()) != 1 || cfg.GetReplicaKeys()[0].GetRegion() != nodetest.RegionName || cfg.GetReplicaKeys()[0].ReplicationLagMillis != nil {
		t.Fatalf("after the planned switch: %v", cfg)
	}
	_, err = c.RotateKeyOnDemand(ctx, &kmspb.RotateKeyOnDemandRequest{KeyId: id})
	wantRefused(t, err, codes.FailedPrecondition, "KMSInvalidStateException", "eu-2")
	_, err = c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "us-3"})
	wantRefused(t, err, codes.FailedPrecondition, "KMSInvalidStateException", "primary region eu-2")

	// In a replica region: without Force the caller is sent to the primary.
	_, err = c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: nodetest.RegionName})
	wantRefused(t, err, codes.FailedPrecondition, "KMSInvalidStateException", "primary region is eu-2", "Call UpdatePrimaryRegion in eu-2", "Force")
	_, err = c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: "us-3", Force: true})
	wantRefused(t, err, codes.InvalidArgument, "ValidationException", "PrimaryRegion", "us-3")
	if cfg := describe(t, c, id).GetMultiRegionConfiguration(); cfg.GetEpoch() != 2 || cfg.GetPrimaryKey().GetRegion() != "eu-2" {
		t.Fatalf("refused updates changed the key: %v", cfg)
	}
	// Forced, here, as when eu-2 is unreachable: this region is primary
	// again under a higher epoch.
	if _, err := c.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: nodetest.RegionName, Force: true}); err != nil {
		t.Fatal(err)
	}
	cfg = describe(t, c, id).GetMultiRegionConfiguration()
	if cfg.GetMultiRegionKeyType() != "PRIMARY" || cfg.GetPrimaryKey().GetRegion() != nodetest.RegionName || cfg.GetEpoch() != 3 ||
		len(cfg.GetReplicaKeys()) != 1 || cfg.GetReplicaKeys()[0].GetRegion() != "eu-2" {
		t.Fatalf("after the forced promotion: %v", cfg)
	}
	if got := encryptedWith(); got != second {
		t.Fatalf("Encrypt used material %s after the promotion, want %s", got, second)
	}
}

// TestMultiRegionPrimaryWaitsForItsReplicasToBeDeleted: as AWS, a primary
// with replicas is PendingReplicaDeletion, with no deletion date yet.
func TestMultiRegionPrimaryWaitsForItsReplicasToBeDeleted(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	ctx := ctxT(t)
	id := createMRK(t, c, "")
	if _, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "eu-2"}); err != nil {
		t.Fatal(err)
	}
	sched, err := c.ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: id, PendingWindowInDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	if sched.GetKeyState() != "PendingReplicaDeletion" || sched.GetDeletionDate() != 0 {
		t.Fatalf("ScheduleKeyDeletion = %v, want PendingReplicaDeletion without a date", sched)
	}
	md := describe(t, c, id)
	if md.GetKeyState() != "PendingReplicaDeletion" || md.GetEnabled() || md.GetPendingDeletionWindowInDays() != 7 || md.GetDeletionDate() != 0 {
		t.Fatalf("DescribeKey = %v", md)
	}
	_, err = c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("x")})
	wantRefused(t, err, codes.FailedPrecondition, "KMSInvalidStateException", "PendingReplicaDeletion")
	if _, err := c.CancelKeyDeletion(ctx, &kmspb.CancelKeyDeletionRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, c, id).GetKeyState(); got != "Disabled" {
		t.Fatalf("after CancelKeyDeletion: %s, want Disabled", got)
	}
}

// TestMultiRegionActionsNeedThePolicy: ReplicateKey and UpdatePrimaryRegion
// are authorized as kms:ReplicateKey and kms:UpdatePrimaryRegion.
func TestMultiRegionActionsNeedThePolicy(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	ctx := ctxT(t)
	const doc = `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Principal": {"Trent": ["admin", "role/admin"]}, "Action": "kms:*", "Resource": "*"},
	  {"Effect": "Allow", "Principal": {"Trent": "alice"}, "Action": ["kms:DescribeKey", "kms:Encrypt"], "Resource": "*"},
	  {"Effect": "Allow", "Principal": {"Trent": "bob"}, "Action": ["kms:ReplicateKey", "kms:UpdatePrimaryRegion"], "Resource": "*"}
	]}`
	id := createMRK(t, r.KMS(0), doc)
	alice := kmspb.NewKMSClient(r.ConnAs(0, "alice"))
	bob := kmspb.NewKMSClient(r.ConnAs(0, "bob"))

	_, err := alice.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "eu-2"})
	wantRefused(t, err, codes.PermissionDenied, "AccessDeniedException", "alice", "kms:ReplicateKey")
	_, err = alice.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: "eu-2"})
	wantRefused(t, err, codes.PermissionDenied, "AccessDeniedException", "alice", "kms:UpdatePrimaryRegion")
	if n := len(describe(t, r.KMS(0), id).GetMultiRegionConfiguration().GetReplicaKeys()); n != 0 {
		t.Fatalf("a denied ReplicateKey added a replica: %d replicas", n)
	}

	// bob may replicate; the replica's default policy names him.
	rep, err := bob.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "eu-2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.GetReplicaPolicy(), `"bob"`) {
		t.Fatalf("ReplicaPolicy %q does not name the caller", rep.GetReplicaPolicy())
	}
	// bob gets past authorization: the refusal is about the replica's state.
	_, err = bob.UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: "eu-2"})
	wantRefused(t, err, codes.FailedPrecondition, "KMSInvalidStateException", "CREATING")
}

// TestReplicaPolicyLockoutIsCheckedForTheReplica: the lockout safety check
// asks whether the caller could change the replica's policy.
func TestReplicaPolicyLockoutIsCheckedForTheReplica(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	c := r.KMS(0)
	ctx := ctxT(t)
	id := createMRK(t, c, "")
	// Allows PutKeyPolicy on the replica's resource name only.
	doc := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Trent": "admin"}, "Action": "kms:*",
	  "Resource": "arn:trent:kms:eu-2::key/` + id + `"}]}`
	rep, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "eu-2", Policy: doc})
	if err != nil {
		t.Fatalf("a policy that lets the caller manage the replica: %v", err)
	}
	if rep.GetReplicaPolicy() != doc {
		t.Fatalf("ReplicaPolicy = %q, want the policy byte for byte", rep.GetReplicaPolicy())
	}
	_, err = c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "us-3", Policy: doc})
	wantRefused(t, err, codes.InvalidArgument, "MalformedPolicyDocumentException", "Policy")
	if _, err := c.ReplicateKey(ctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: "us-3", Policy: doc, BypassPolicyLockoutSafetyCheck: true}); err != nil {
		t.Fatalf("with the lockout check bypassed: %v", err)
	}
}

package node_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport/kmspb"
)

// replWait bounds convergence across regions: a shipment is a round trip
// plus a Raft commit at each end, but a loaded 2-core machine under -race
// may stall gossip and elections for seconds.
const replWait = 30 * time.Second

// link is the network between two regions as the replicator sees it: real
// gRPC, with a one-way delay added and a switch that cuts it.
type link struct {
	delay atomic.Int64 // nanoseconds each way
	cut   atomic.Bool
	last  atomic.Pointer[replpb.ShipRequest] // the last shipment that got through
	// clock, if set, stamps both regions' commands (deletion tests move it).
	clock *nodetest.Clock
}

func (l *link) wrap(_ string, c replpb.ReplicationClient) replpb.ReplicationClient {
	return &linkedClient{l: l, c: c}
}

type linkedClient struct {
	l *link
	c replpb.ReplicationClient
}

var errCut = status.Error(codes.Unavailable, "test partition between regions")

func (c *linkedClient) pass(ctx context.Context) error {
	if c.l.cut.Load() {
		return errCut
	}
	if d := time.Duration(c.l.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *linkedClient) Hello(ctx context.Context, in *replpb.HelloRequest, opts ...grpc.CallOption) (*replpb.HelloResponse, error) {
	if err := c.pass(ctx); err != nil {
		return nil, err
	}
	out, err := c.c.Hello(ctx, in, opts...)
	if err == nil {
		err = c.pass(ctx)
	}
	return out, err
}

func (c *linkedClient) Ship(ctx context.Context, in *replpb.ShipRequest, opts ...grpc.CallOption) (*replpb.ShipResponse, error) {
	if err := c.pass(ctx); err != nil {
		return nil, err
	}
	out, err := c.c.Ship(ctx, in, opts...)
	if err == nil {
		c.l.last.Store(in)
		// A reply lost on the way back: the change was applied, the
		// sender does not know.
		err = c.pass(ctx)
	}
	return out, err
}

// twoRegions starts eu-1 and us-1, three nodes each, linked by gossip (one
// WAN seed) and one CA, with replication shipping through l.
func twoRegions(t testing.TB, l *link) (eu, us *nodetest.Region) {
	t.Helper()
	keys := gossipKeyFile(t)
	repl := func(cfg *node.Config) {
		cfg.Replication = node.ReplicationConfig{
			Interval: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
			ProbeEvery: 200 * time.Millisecond, WrapClient: l.wrap,
		}
	}
	start := func(name string, shareCA *nodetest.Region, wan []string) *nodetest.Region {
		r := nodetest.StartRegion(t, nodetest.Options{
			Nodes: 1, Region: name, ShareCA: shareCA, Clock: l.clock,
			Configure: func(_ int, cfg *node.Config) {
				cfg.Gossip = testGossip(keys)
				cfg.Gossip.WANJoin = wan
				gossipRaftTiming(cfg)
				repl(cfg)
			},
		})
		seed := r.Node(0).GossipLANAddr()
		for range 2 {
			r.AddNode(func(cfg *node.Config) {
				cfg.Join = ""
				cfg.Gossip.WANJoin = nil
				cfg.Gossip.RetryJoin = []string{seed}
			})
		}
		return r
	}
	eu = start("eu-1", nil, nil)
	us = start("us-1", eu, []string{eu.Node(0).GossipWANAddr()})
	return eu, us
}

func describe(t testing.TB, r *nodetest.Region, i int, id string) (*kmspb.KeyMetadata, error) {
	t.Helper()
	out, err := r.KMS(i).DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: id})
	return out.GetKeyMetadata(), err
}

// replicaOf reads region's entry in the primary's configuration.
func replicaOf(md *kmspb.KeyMetadata, region string) *kmspb.MultiRegionKey {
	for _, r := range md.GetMultiRegionConfiguration().GetReplicaKeys() {
		if r.GetRegion() == region {
			return r
		}
	}
	return nil
}

// caughtUp reports whether the primary seen from r's node i records region
// as active with every change acked.
func caughtUp(t testing.TB, r *nodetest.Region, i int, id, region string) bool {
	md, err := describe(t, r, i, id)
	if err != nil {
		return false
	}
	rep := replicaOf(md, region)
	return rep != nil && rep.GetStatus() == "ACTIVE" && rep.GetAckedChange() == md.GetMultiRegionConfiguration().GetSharedChange()
}

func createMRK(t testing.TB, r *nodetest.Region, i int) string {
	t.Helper()
	out, err := r.KMS(i).CreateKey(ctxT(t), &kmspb.CreateKeyRequest{MultiRegion: true, Description: "primary copy"})
	if err != nil {
		t.Fatalf("CreateKey --multi-region: %v", err)
	}
	return out.GetKeyMetadata().GetKeyId()
}

func replicate(t testing.TB, r *nodetest.Region, i int, id, region string) {
	t.Helper()
	_, err := r.KMS(i).ReplicateKey(ctxT(t), &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: region, Description: "replica copy"})
	if err != nil {
		t.Fatalf("ReplicateKey to %s: %v", region, err)
	}
}

func encryptIn(t testing.TB, r *nodetest.Region, i int, id, text string) []byte {
	t.Helper()
	var blob []byte
	retryUnavailable(t, fmt.Sprintf("Encrypt on node%d", i), func() error {
		out, err := r.KMS(i).Encrypt(ctxT(t), &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte(text)})
		blob = out.GetCiphertextBlob()
		return err
	})
	return blob
}

// retryUnavailable runs op until it succeeds or fails otherwise than
// Unavailable, as a client does: on a loaded machine a region may hold an
// election in the middle of a test.
func retryUnavailable(t testing.TB, what string, op func() error) {
	t.Helper()
	deadline := time.Now().Add(replWait)
	for {
		err := op()
		if err == nil {
			return
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decryptsEverywhere checks every node of every region opens each blob.
func decryptsEverywhere(t *testing.T, blobs map[string][]byte, regions ...*nodetest.Region) {
	t.Helper()
	for _, r := range regions {
		for _, i := range r.Running() {
			for text, blob := range blobs {
				var out *kmspb.DecryptResponse
				retryUnavailable(t, fmt.Sprintf("Decrypt of %q on node%d of %s", text, i, regionOf(t, r, i)), func() (err error) {
					out, err = r.KMS(i).Decrypt(ctxT(t), &kmspb.DecryptRequest{CiphertextBlob: blob})
					return err
				})
				if string(out.GetPlaintext()) != text {
					t.Errorf("Decrypt of %q on node%d of %s gave %q", text, i, regionOf(t, r, i), out.GetPlaintext())
				}
			}
		}
	}
}

func regionOf(t *testing.T, r *nodetest.Region, i int) string {
	t.Helper()
	return r.Node(i).Region()
}

func rotations(t *testing.T, r *nodetest.Region, i int, id string) [][]byte {
	t.Helper()
	out, err := r.KMS(i).ListKeyRotations(ctxT(t), &kmspb.ListKeyRotationsRequest{KeyId: id, Limit: 1000})
	if err != nil {
		t.Fatalf("ListKeyRotations on node%d: %v", i, err)
	}
	var ids [][]byte
	for _, rot := range out.GetRotations() {
		ids = append(ids, []byte(rot.GetKeyMaterialId()))
	}
	return ids
}

func TestMultiRegionKeyReplicatesBetweenRegions(t *testing.T) {
	l := &link{}
	eu, us := twoRegions(t, l)
	id := createMRK(t, eu, 1)
	replicate(t, eu, 2, id, "us-1")

	nodetest.WaitFor(t, replWait, "the replica to exist on every us-1 node", func() bool {
		for i := range us.Len() {
			md, err := describe(t, us, i, id)
			if err != nil || md.GetKeyState() != "Enabled" {
				return false
			}
		}
		return true
	})
	nodetest.WaitFor(t, replWait, "eu-1 to record the replica active", func() bool { return caughtUp(t, eu, 0, id, "us-1") })

	md, _ := describe(t, us, 0, id)
	cfg := md.GetMultiRegionConfiguration()
	if !md.GetMultiRegion() || cfg.GetMultiRegionKeyType() != "REPLICA" || cfg.GetPrimaryKey().GetRegion() != "eu-1" {
		t.Errorf("replica's view: MultiRegion %v, configuration %v", md.GetMultiRegion(), cfg)
	}
	if md.GetDescription() != "replica copy" {
		t.Errorf("replica description %q, want its own", md.GetDescription())
	}
	if pmd, _ := describe(t, eu, 0, id); pmd.GetDescription() != "primary copy" {
		t.Errorf("primary description %q changed", pmd.GetDescription())
	}

	blobs := map[string][]byte{"from eu": encryptIn(t, eu, 0, id, "from eu"), "from us": encryptIn(t, us, 1, id, "from us")}
	decryptsEverywhere(t, blobs, eu, us)

	// Rotation happens at the primary only, and reaches the replica before
	// Encrypt uses the new version anywhere.
	if _, err := us.KMS(0).RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("RotateKeyOnDemand at the replica: %v, want FailedPrecondition", err)
	}
	if _, err := eu.KMS(0).RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
		t.Fatalf("RotateKeyOnDemand at the primary: %v", err)
	}
	nodetest.WaitFor(t, replWait, "the rotation to reach us-1", func() bool {
		return caughtUp(t, eu, 0, id, "us-1") && len(rotations(t, us, 2, id)) == 1
	})
	blobs["after rotation eu"] = encryptIn(t, eu, 2, id, "after rotation eu")
	blobs["after rotation us"] = encryptIn(t, us, 0, id, "after rotation us")
	decryptsEverywhere(t, blobs, eu, us)

	// Enabled state is the region's own.
	if _, err := us.KMS(0).DisableKey(ctxT(t), &kmspb.DisableKeyRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := us.KMS(1).Encrypt(ctxT(t), &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("x")}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Encrypt at the disabled replica: %v, want FailedPrecondition", err)
	}
	encryptIn(t, eu, 1, id, "primary still enabled")
}

func TestReplicationThroughLatencyAndPartition(t *testing.T) {
	l := &link{}
	l.delay.Store(int64(50 * time.Millisecond))
	eu, us := twoRegions(t, l)
	id := createMRK(t, eu, 0)
	replicate(t, eu, 0, id, "us-1")
	nodetest.WaitFor(t, replWait, "the replica to be created through the slow link", func() bool { return caughtUp(t, eu, 0, id, "us-1") })
	blobs := map[string][]byte{"before": encryptIn(t, eu, 0, id, "before")}

	l.cut.Store(true)
	const rotationsDuringCut = 3
	for range rotationsDuringCut {
		if _, err := eu.KMS(0).RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
			t.Fatal(err)
		}
	}
	// The replica keeps serving; the primary reports the lag and the error.
	blobs["during cut, us"] = encryptIn(t, us, 0, id, "during cut, us")
	blobs["during cut, eu"] = encryptIn(t, eu, 1, id, "during cut, eu")
	nodetest.WaitFor(t, replWait, "the primary to report the replica behind with an error", func() bool {
		md, err := describe(t, eu, 0, id)
		rep := replicaOf(md, "us-1")
		return err == nil && rep.GetReplicationLagMillis() > 0 && rep.GetLastError() != "" &&
			rep.GetAckedChange() < md.GetMultiRegionConfiguration().GetSharedChange()
	})

	// Cluster status sums it up per destination region.
	nodetest.WaitFor(t, replWait, "cluster status to report us-1 behind", func() bool {
		st, err := eu.Cluster(eu.Leader()).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
		if err != nil || len(st.GetReplication()) != 1 {
			return false
		}
		d := st.GetReplication()[0]
		return d.GetRegion() == "us-1" && d.GetKeysBehind() == 1 && d.GetPendingChanges() > 0 && d.GetLagMillis() > 0 && d.GetLastError() != ""
	})

	l.cut.Store(false)
	nodetest.WaitFor(t, replWait, "healing to converge", func() bool {
		return caughtUp(t, eu, 0, id, "us-1") && len(rotations(t, us, 0, id)) == rotationsDuringCut
	})
	// No duplicates: the replica lists each version once, like the primary.
	if got, want := rotations(t, us, 1, id), rotations(t, eu, 1, id); !slices.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("us-1 rotations %s, eu-1 %s", got, want)
	}
	md, _ := describe(t, eu, 0, id)
	if rep := replicaOf(md, "us-1"); rep.GetReplicationLagMillis() != 0 || rep.GetLastError() != "" {
		t.Errorf("after healing: lag %dms, last error %q", rep.GetReplicationLagMillis(), rep.GetLastError())
	}
	nodetest.WaitFor(t, replWait, "cluster status to show nothing behind", func() bool {
		st, err := eu.Cluster(eu.Leader()).Status(ctxT(t), &kmspb.ClusterStatusRequest{})
		if err != nil {
			return false
		}
		for _, d := range st.GetReplication() {
			if d.GetKeysBehind() > 0 || d.GetPendingChanges() > 0 {
				return false
			}
		}
		return true
	})
	blobs["after"] = encryptIn(t, us, 2, id, "after")
	decryptsEverywhere(t, blobs, eu, us)
}

func updatePrimary(t *testing.T, r *nodetest.Region, i int, id, region string, force bool) {
	t.Helper()
	_, err := r.KMS(i).UpdatePrimaryRegion(ctxT(t), &kmspb.UpdatePrimaryRegionRequest{KeyId: id, PrimaryRegion: region, Force: force})
	if err != nil {
		t.Fatalf("UpdatePrimaryRegion to %s (force %v) on node%d: %v", region, force, i, err)
	}
}

func rotate(t *testing.T, r *nodetest.Region, i int, id string) {
	t.Helper()
	if _, err := r.KMS(i).RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id}); err != nil {
		t.Fatalf("RotateKeyOnDemand on node%d: %v", i, err)
	}
}

// primaryIs reports whether both regions agree that region is the primary
// under the same epoch, with the other region an active replica caught up.
func primaryIs(t *testing.T, primary, replica *nodetest.Region, id, region, replicaRegion string) bool {
	pmd, err := describe(t, primary, primary.Running()[0], id)
	if err != nil {
		return false
	}
	rmd, err := describe(t, replica, replica.Running()[0], id)
	if err != nil {
		return false
	}
	pc, rc := pmd.GetMultiRegionConfiguration(), rmd.GetMultiRegionConfiguration()
	return pc.GetMultiRegionKeyType() == "PRIMARY" && pc.GetPrimaryKey().GetRegion() == region &&
		rc.GetMultiRegionKeyType() == "REPLICA" && rc.GetPrimaryKey().GetRegion() == region &&
		pc.GetEpoch() == rc.GetEpoch() && caughtUp(t, primary, primary.Running()[0], id, replicaRegion)
}

func sameMaterial(t *testing.T, a, b *nodetest.Region, id string) bool {
	ra, rb := rotations(t, a, a.Running()[0], id), rotations(t, b, b.Running()[0], id)
	key := func(ids [][]byte) []string {
		var out []string
		for _, id := range ids {
			out = append(out, string(id))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(ra), key(rb))
}

// TestForcedFailoverAndFailback cuts the primary region off, promotes the
// replica by force, rotates on both sides of the split, heals, and fails
// back: every ciphertext of both sides decrypts everywhere, no version is
// lost and the promoted region's current version stays current.
func TestForcedFailoverAndFailback(t *testing.T) {
	l := &link{}
	eu, us := twoRegions(t, l)
	id := createMRK(t, eu, 0)
	replicate(t, eu, 0, id, "us-1")
	nodetest.WaitFor(t, replWait, "the replica", func() bool { return caughtUp(t, eu, 0, id, "us-1") })
	blobs := map[string][]byte{"before": encryptIn(t, eu, 0, id, "before")}

	l.cut.Store(true)
	updatePrimary(t, us, 1, id, "us-1", true)
	rotate(t, us, 0, id) // pending: eu-1 is a replica now and cannot ack
	rotate(t, eu, 0, id) // pending: eu-1 still believes it is primary
	blobs["split, us"] = encryptIn(t, us, 2, id, "split, us")
	blobs["split, eu"] = encryptIn(t, eu, 1, id, "split, eu")
	if md, _ := describe(t, us, 0, id); md.GetMultiRegionConfiguration().GetMultiRegionKeyType() != "PRIMARY" || md.GetMultiRegionConfiguration().GetEpoch() != 2 {
		t.Fatalf("us-1 after the forced update: %v", md.GetMultiRegionConfiguration())
	}

	l.cut.Store(false)
	nodetest.WaitFor(t, replWait, "eu-1 to demote itself and both regions to converge on us-1", func() bool {
		return primaryIs(t, us, eu, id, "us-1", "eu-1") && sameMaterial(t, eu, us, id) && len(rotations(t, us, 0, id)) == 2
	})
	blobs["healed, us"] = encryptIn(t, us, 0, id, "healed, us")
	blobs["healed, eu"] = encryptIn(t, eu, 2, id, "healed, eu")
	decryptsEverywhere(t, blobs, eu, us)

	// Failback, planned: both regions up, crypto goes on meanwhile.
	updatePrimary(t, us, 0, id, "eu-1", false)
	blobs["during failback"] = encryptIn(t, eu, 1, id, "during failback")
	nodetest.WaitFor(t, replWait, "failback to eu-1", func() bool {
		return primaryIs(t, eu, us, id, "eu-1", "us-1") && sameMaterial(t, eu, us, id)
	})
	rotate(t, eu, 0, id)
	nodetest.WaitFor(t, replWait, "a rotation after failback to reach us-1", func() bool {
		return caughtUp(t, eu, 0, id, "us-1") && len(rotations(t, us, 0, id)) == 3
	})
	blobs["after failback"] = encryptIn(t, us, 1, id, "after failback")
	decryptsEverywhere(t, blobs, eu, us)
}

// TestLeaderChangesDuringRotations moves both regions' leaders while the
// primary rotates: the new leaders resume from the replicated cursors and
// nothing is lost or applied twice.
func TestLeaderChangesDuringRotations(t *testing.T) {
	l := &link{}
	eu, us := twoRegions(t, l)
	id := createMRK(t, eu, 0)
	replicate(t, eu, 0, id, "us-1")
	nodetest.WaitFor(t, replWait, "the replica", func() bool { return caughtUp(t, eu, 0, id, "us-1") })
	const rounds = 4
	for round := range rounds {
		// A write racing an election may come back Unavailable (outcome
		// unknown); it is retried, so the count below is read from eu-1.
		eventually(t, "a rotation at eu-1", func() error {
			_, err := eu.KMS(eu.Running()[0]).RotateKeyOnDemand(ctxT(t), &kmspb.RotateKeyOnDemandRequest{KeyId: id})
			return err
		})
		// Alternate: stop the leader of one region, then of the other.
		r := eu
		if round%2 == 1 {
			r = us
		}
		leader := r.Leader()
		r.Stop(leader)
		r.Restart(leader)
	}
	nodetest.WaitFor(t, replWait, "every rotation to reach us-1 once", func() bool {
		return caughtUp(t, eu, eu.Running()[0], id, "us-1") && sameMaterial(t, eu, us, id)
	})
	got := rotations(t, us, 0, id)
	seen := make(map[string]bool)
	for _, m := range got {
		if seen[string(m)] {
			t.Errorf("us-1 lists version %x twice", m)
		}
		seen[string(m)] = true
	}
	if len(got) < rounds {
		t.Errorf("us-1 lists %d rotations, want at least %d", len(got), rounds)
	}
	blobs := map[string][]byte{"eu": encryptIn(t, eu, 0, id, "eu"), "us": encryptIn(t, us, 0, id, "us")}
	decryptsEverywhere(t, blobs, eu, us)
}

// TestPrimaryDeletionWaitsForItsReplicas: a primary scheduled for deletion
// waits in PendingReplicaDeletion; once the replica region has deleted its
// key, the primary drops the replica and its own waiting period starts.
func TestPrimaryDeletionWaitsForItsReplicas(t *testing.T) {
	l := &link{clock: &nodetest.Clock{}}
	eu, us := twoRegions(t, l)
	id := createMRK(t, eu, 0)
	replicate(t, eu, 0, id, "us-1")
	nodetest.WaitFor(t, replWait, "the replica", func() bool { return caughtUp(t, eu, 0, id, "us-1") })

	if _, err := eu.KMS(0).ScheduleKeyDeletion(ctxT(t), &kmspb.ScheduleKeyDeletionRequest{KeyId: id, PendingWindowInDays: 7}); err != nil {
		t.Fatal(err)
	}
	if md, _ := describe(t, eu, 0, id); md.GetKeyState() != "PendingReplicaDeletion" {
		t.Fatalf("primary state %q, want PendingReplicaDeletion", md.GetKeyState())
	}
	if _, err := us.KMS(0).ScheduleKeyDeletion(ctxT(t), &kmspb.ScheduleKeyDeletionRequest{KeyId: id, PendingWindowInDays: 7}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, replWait, "the primary to see its replica pending deletion", func() bool {
		md, err := describe(t, eu, 0, id)
		return err == nil && replicaOf(md, "us-1").GetStatus() == "DELETING"
	})
	l.clock.Advance(8 * 24 * time.Hour)
	nodetest.WaitFor(t, replWait, "the replica region to delete its key", func() bool {
		_, err := describe(t, us, 0, id)
		return status.Code(err) == codes.NotFound
	})
	nodetest.WaitFor(t, replWait, "the primary to drop the replica and start its waiting period", func() bool {
		md, err := describe(t, eu, 0, id)
		return err == nil && md.GetKeyState() == "PendingDeletion" && len(md.GetMultiRegionConfiguration().GetReplicaKeys()) == 0
	})
}

package node_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/regions/replicator/replpb"
	"github.com/trent-kms/trent/transport"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// replicationClient dials r's node i's Replication service with the
// certificate of node j of region from.
func replicationClient(t *testing.T, from *nodetest.Region, j int, to *nodetest.Region, i int) replpb.ReplicationClient {
	t.Helper()
	dir := from.NodeCertDir(j)
	rl, err := pki.NewReloader(filepath.Join(dir, pki.NodeCertFile), filepath.Join(dir, pki.NodeKeyFile), filepath.Join(dir, pki.CACertFile), nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rl.Close)
	conn, err := transport.PeerDialer(rl, to.Node(i).Region())(to.Node(i).GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return replpb.NewReplicationClient(conn)
}

// TestForgedAndReplayedShipmentsAreRefused: a region accepts shipments only
// from nodes of other regions, signed with the key it pinned for the sender's
// region, once, and meant for the node that receives them.
func TestForgedAndReplayedShipmentsAreRefused(t *testing.T) {
	l := &link{}
	eu, us := twoRegions(t, l)
	// A key whose primary is us-1: eu-1 pins us-1's signing key.
	out, err := us.KMS(0).CreateKey(ctxT(t), &kmspb.CreateKeyRequest{MultiRegion: true})
	if err != nil {
		t.Fatal(err)
	}
	id := out.GetKeyMetadata().GetKeyId()
	replicate(t, us, 0, id, "eu-1")
	nodetest.WaitFor(t, replWait, "the replica in eu-1", func() bool { return caughtUp(t, us, 0, id, "eu-1") })
	captured := l.last.Load()
	if captured == nil {
		t.Fatal("no shipment went through the link")
	}
	var batch replpb.Batch
	if err := proto.Unmarshal(captured.GetBatch(), &batch); err != nil {
		t.Fatal(err)
	}

	refused := func(name string, c replpb.ReplicationClient, req *replpb.ShipRequest, code codes.Code, reason string) {
		t.Helper()
		_, err := c.Ship(ctxT(t), req)
		if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), reason) {
			t.Errorf("%s: %v, want %s mentioning %q", name, err, code, reason)
		}
	}
	// Every case goes to every eu-1 node: only one is the captured batch's
	// destination, and none may accept it.
	for i := range eu.Len() {
		fromUS := replicationClient(t, us, 1, eu, i)

		if eu.Node(i).ID() == batch.GetDestNodeId() {
			refused("replayed", fromUS, captured, codes.PermissionDenied, "seen before")
		} else {
			refused("replayed elsewhere", fromUS, captured, codes.InvalidArgument, "misdirected")
		}

		altered := proto.Clone(captured).(*replpb.ShipRequest)
		altered.Batch = append([]byte(nil), altered.Batch...)
		altered.Batch[len(altered.Batch)-1] ^= 1
		refused("altered", fromUS, altered, codes.PermissionDenied, "signature does not verify")

		// A well-formed, fresh batch signed by another key than us-1's.
		forger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		fresh := proto.Clone(&batch).(*replpb.Batch)
		fresh.DestNodeId = eu.Node(i).ID()
		fresh.Nonce = []byte("0123456789abcdef-forged")
		raw, err := proto.Marshal(fresh)
		if err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256(append([]byte("trent replication batch v1\x00"), raw...))
		sig, err := ecdsa.SignASN1(rand.Reader, forger, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.MarshalPKIXPublicKey(&forger.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		refused("forged key", fromUS, &replpb.ShipRequest{Batch: raw, Signature: sig, SigningPublicKey: pub}, codes.PermissionDenied, "pinned")
		// The forged key presented as the pinned one: the signature fails.
		refused("forged signature", fromUS, &replpb.ShipRequest{Batch: raw, Signature: sig, SigningPublicKey: captured.GetSigningPublicKey()},
			codes.PermissionDenied, "signature does not verify")

		// A node of eu-1 itself, and a client, may not call the service.
		refused("same region", replicationClient(t, eu, (i+1)%eu.Len(), eu, i), captured, codes.PermissionDenied, "other regions")
	}
	// The replica still serves after all of it.
	encryptIn(t, eu, 0, id, "still fine")
}

package node_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// BenchmarkFollowerReadAfterWrite measures what a client sees when it
// writes through one follower and at once reads through the other: each
// iteration creates a key on follower A, then encrypts under it on follower
// B. The Encrypt must wait until B has applied the CreateKey (reads are
// linearizable), so its latency shows how fast a follower learns a commit
// when no other write follows. Reported: p50 and p99 of the Encrypt.
func BenchmarkFollowerReadAfterWrite(b *testing.B) {
	r := nodetest.StartRegion(b, nodetest.Options{})
	followers := r.Followers()
	writer, reader := r.KMS(followers[0]), r.KMS(followers[1])
	ctx := context.Background()
	plaintext := make([]byte, 32)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		resp, err := writer.CreateKey(ctx, &kmspb.CreateKeyRequest{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := reader.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: resp.GetKeyMetadata().GetKeyId(), Plaintext: plaintext}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-read-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-read-ms")
}

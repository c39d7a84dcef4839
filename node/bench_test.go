package node_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// BenchmarkRegionEncrypt32 drives Encrypt of 32 bytes at 64 concurrent
// callers spread over the nodes of an in-process 3-node region. Compare
// with cmd/kmsbench against a bare gRPC server (scripts/bench.sh) for the
// ratio; this benchmark is for profiling the request path.
func BenchmarkRegionEncrypt32(b *testing.B) {
	r := nodetest.StartRegion(b, nodetest.Options{})
	ctx := context.Background()
	resp, err := r.KMS(0).CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		b.Fatal(err)
	}
	id := resp.GetKeyMetadata().GetKeyId()
	clients := []kmspb.KMSClient{r.KMS(0), r.KMS(1), r.KMS(2)}
	plaintext := make([]byte, 32)
	b.SetParallelism(32)
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		c := clients[next.Add(1)%3]
		for pb.Next() {
			if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: plaintext}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRegionCreateKey drives CreateKey at 64 concurrent callers against
// the leader of an in-process 3-node region (Raft on disk, real gRPC). Run
// beside `kmsbench raft-baseline` to separate Trent's write path from the cost
// of separate processes.
func BenchmarkRegionCreateKey(b *testing.B) {
	r := nodetest.StartRegion(b, nodetest.Options{})
	c := r.KMS(r.Leader())
	ctx := context.Background()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

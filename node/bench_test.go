package node_test

import (
	"context"
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
	var next int64
	b.RunParallel(func(pb *testing.PB) {
		next++
		c := clients[next%3]
		for pb.Next() {
			if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: plaintext}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

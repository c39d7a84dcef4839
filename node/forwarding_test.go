package node_test

import (
	"fmt"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// Many writes forwarded by one follower at once, some refused by the state
// machine: each caller gets its own outcome, success or refusal, and nothing
// else's.
func TestConcurrentWritesThroughAFollowerEachGetTheirOwnOutcome(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	target := createKey(t, r.KMS(r.Leader()), "")
	const taken = 8
	for i := range taken {
		if _, err := r.KMS(r.Leader()).CreateAlias(ctxT(t), &kmspb.CreateAliasRequest{
			AliasName: fmt.Sprintf("alias/taken-%d", i), TargetKeyId: target}); err != nil {
			t.Fatalf("CreateAlias: %v", err)
		}
	}

	follower := r.KMS(r.Followers()[0])
	const writes = 96
	created := make([]string, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			if i%3 == 0 {
				_, err := follower.CreateAlias(ctxT(t), &kmspb.CreateAliasRequest{
					AliasName: fmt.Sprintf("alias/taken-%d", i%taken), TargetKeyId: target})
				if status.Code(err) != codes.AlreadyExists {
					t.Errorf("write %d: CreateAlias of a taken name: err = %v, want AlreadyExists", i, err)
				}
				return
			}
			want := fmt.Sprintf("write %d", i)
			resp, err := follower.CreateKey(ctxT(t), &kmspb.CreateKeyRequest{Description: want})
			if err != nil {
				t.Errorf("write %d: CreateKey: %v", i, err)
				return
			}
			if got := resp.GetKeyMetadata().GetDescription(); got != want {
				t.Errorf("write %d: CreateKey answered with the key described %q", i, got)
			}
			created[i] = resp.GetKeyMetadata().GetKeyId()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	seen := map[string]bool{}
	for i, id := range created {
		if id == "" {
			continue
		}
		if seen[id] {
			t.Fatalf("key %s answered to two writes", id)
		}
		seen[id] = true
		got, err := r.KMS(r.Leader()).DescribeKey(ctxT(t), &kmspb.DescribeKeyRequest{KeyId: id})
		if err != nil {
			t.Fatalf("DescribeKey %s on the leader: %v", id, err)
		}
		if want := fmt.Sprintf("write %d", i); got.GetKeyMetadata().GetDescription() != want {
			t.Fatalf("key %s is described %q on the leader, want %q", id, got.GetKeyMetadata().GetDescription(), want)
		}
	}
	if len(seen) != writes-writes/3 {
		t.Fatalf("%d keys created, want %d", len(seen), writes-writes/3)
	}
}

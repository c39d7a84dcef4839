package transport_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
)

// TestPrincipalsOverTheirRateAreThrottledAndAudited drives a 3-node region
// whose buckets refill once in 1000 s, so the test sees bursts only and no
// timing: a principal past its burst gets ThrottlingException, in one
// class and not the other, on one node and not another; other principals
// are unaffected; and the refusals are in the audit log.
func TestPrincipalsOverTheirRateAreThrottledAndAudited(t *testing.T) {
	const slow = 0.001 // requests per second
	r := nodetest.StartRegion(t, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.RateLimits = transport.RateLimits{
			Crypto:     transport.RateLimit{PerSecond: slow, Burst: 3},
			Management: transport.RateLimit{PerSecond: slow, Burst: 2},
			Overrides:  map[string]transport.PrincipalRateLimits{"batch": {Crypto: transport.Unlimited}},
		}
	}})
	ctx := ctxT(t)
	random := func(i int, principal string) error {
		_, err := kmspb.NewKMSClient(r.ConnAs(i, principal)).GenerateRandom(ctx, &kmspb.GenerateRandomRequest{NumberOfBytes: 16})
		return err
	}
	list := func(i int, principal string) error {
		_, err := kmspb.NewKMSClient(r.ConnAs(i, principal)).ListKeys(ctx, &kmspb.ListKeysRequest{})
		return err
	}
	burst := func(what string, n int, call func() error) {
		t.Helper()
		for k := range n {
			if err := call(); err != nil {
				t.Fatalf("%s, request %d of its burst of %d: %v", what, k+1, n, err)
			}
		}
	}
	throttled := func(what, principal string, err error) {
		t.Helper()
		want := "ThrottlingException: rate exceeded for principal " + principal + ":"
		if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.HasPrefix(st.Message(), want) {
			t.Fatalf("%s past its burst: %v; want ResourceExhausted %q...", what, err, want)
		}
	}

	burst("alice's GenerateRandom on node0", 3, func() error { return random(0, "alice") })
	throttled("alice's GenerateRandom on node0", "alice", random(0, "alice"))
	burst("alice's ListKeys on node0, another bucket", 2, func() error { return list(0, "alice") })
	throttled("alice's ListKeys on node0", "alice", list(0, "alice"))

	burst("bob's GenerateRandom on node0", 3, func() error { return random(0, "bob") })
	burst("alice's GenerateRandom on node1, which has buckets of its own", 3, func() error { return random(1, "alice") })
	burst("batch's GenerateRandom, not limited by its override", 50, func() error { return random(0, "batch") })
	burst("batch's ListKeys", 2, func() error { return list(0, "batch") })
	throttled("batch's ListKeys, limited by default", "batch", list(0, "batch"))

	// The Cluster service is not limited.
	admin := r.Cluster(0)
	burst("admin's cluster Status", 10, func() error {
		_, err := admin.Status(ctx, &kmspb.ClusterStatusRequest{})
		return err
	})

	var got []string
	for _, rec := range auditLog(t, r, 0) {
		if rec.Principal == "alice" {
			got = append(got, fmt.Sprintf("%s %s %s", rec.Operation, rec.Outcome, rec.ErrorCode))
		}
	}
	allowed := func(op string) string { return op + " " + audit.OutcomeAllowed + " " }
	want := []string{
		allowed("GenerateRandom"), allowed("GenerateRandom"), allowed("GenerateRandom"),
		"GenerateRandom " + audit.OutcomeError + " ThrottlingException",
		allowed("ListKeys"), allowed("ListKeys"),
		"ListKeys " + audit.OutcomeError + " ThrottlingException",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("alice's records on node0:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

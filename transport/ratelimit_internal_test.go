package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// fakeClock is a clock the buckets see move only when the test says.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(t *testing.T, limits RateLimits) (*rateLimiter, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	l, err := newRateLimiter(limits, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if l == nil {
		t.Fatalf("no limiter for %+v", limits)
	}
	return l, clock
}

// admitted counts how many of n requests are allowed at one instant, and
// checks that every refusal is a throttling error.
func admitted(t *testing.T, l *rateLimiter, principal string, class rateClass, n int) int {
	t.Helper()
	ok := 0
	for range n {
		switch err := l.allow(principal, class); {
		case err == nil:
			ok++
		case !errors.Is(err, ErrThrottled):
			t.Fatalf("%s %v: %v, want ErrThrottled", principal, class, err)
		}
	}
	return ok
}

func TestRateLimitAdmitsTheBurstThenRefusesUntilRefilled(t *testing.T) {
	l, clock := newTestLimiter(t, RateLimits{Crypto: RateLimit{PerSecond: 2, Burst: 5}})
	if got := admitted(t, l, "alice", rateCrypto, 10); got != 5 {
		t.Fatalf("admitted %d of 10 at once, want the burst of 5", got)
	}
	clock.advance(time.Second)
	if got := admitted(t, l, "alice", rateCrypto, 10); got != 2 {
		t.Fatalf("admitted %d after 1 s at 2/s, want 2", got)
	}
	clock.advance(time.Hour)
	if got := admitted(t, l, "alice", rateCrypto, 10); got != 5 {
		t.Fatalf("admitted %d after an hour, want the burst of 5 (a bucket holds no more)", got)
	}
}

func TestRateLimitBucketsArePerPrincipalAndPerClass(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimits{
		Crypto:     RateLimit{PerSecond: 1, Burst: 3},
		Management: RateLimit{PerSecond: 1, Burst: 2},
	})
	if got := admitted(t, l, "alice", rateCrypto, 5); got != 3 {
		t.Fatalf("alice crypto: admitted %d, want 3", got)
	}
	if got := admitted(t, l, "alice", rateManagement, 5); got != 2 {
		t.Fatalf("alice management after her crypto bucket ran dry: admitted %d, want 2", got)
	}
	if got := admitted(t, l, "bob", rateCrypto, 5); got != 3 {
		t.Fatalf("bob crypto after alice's ran dry: admitted %d, want 3", got)
	}
	if got := admitted(t, l, "bob", rateManagement, 5); got != 2 {
		t.Fatalf("bob management: admitted %d, want 2", got)
	}
	if got := admitted(t, l, "alice", rateUnlimited, 100); got != 100 {
		t.Fatalf("requests outside the KMS service: admitted %d of 100", got)
	}
}

func TestRateLimitOverrides(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimits{
		Crypto:     RateLimit{PerSecond: 1, Burst: 2},
		Management: RateLimit{PerSecond: 1, Burst: 2},
		Overrides: map[string]PrincipalRateLimits{
			"batch":   {Crypto: RateLimit{PerSecond: 100, Burst: 50}}, // management: the default
			"monitor": {Management: Unlimited},
		},
	})
	for _, c := range []struct {
		principal string
		class     rateClass
		want      int
	}{
		{"batch", rateCrypto, 50},
		{"batch", rateManagement, 2},
		{"monitor", rateCrypto, 2},
		{"monitor", rateManagement, 1000},
		{"someone", rateCrypto, 2},
	} {
		if got := admitted(t, l, c.principal, c.class, 1000); got != c.want {
			t.Errorf("%s %v: admitted %d of 1000, want %d", c.principal, c.class, got, c.want)
		}
	}
}

func TestRateLimitOverrideAloneLimitsOnlyItsPrincipal(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimits{Overrides: map[string]PrincipalRateLimits{
		"noisy": {Management: RateLimit{PerSecond: 1, Burst: 1}},
	}})
	if got := admitted(t, l, "noisy", rateManagement, 3); got != 1 {
		t.Errorf("noisy: admitted %d, want 1", got)
	}
	if got := admitted(t, l, "quiet", rateManagement, 1000); got != 1000 {
		t.Errorf("quiet: admitted %d of 1000", got)
	}
	if got := admitted(t, l, "noisy", rateCrypto, 1000); got != 1000 {
		t.Errorf("noisy crypto: admitted %d of 1000", got)
	}
}

func TestNoRateLimitsBuildsNoLimiter(t *testing.T) {
	for _, limits := range []RateLimits{
		{},
		{Crypto: Unlimited, Management: Unlimited},
		{Overrides: map[string]PrincipalRateLimits{"x": {Crypto: Unlimited}}},
	} {
		l, err := newRateLimiter(limits, time.Now)
		if err != nil || l != nil {
			t.Errorf("%+v: limiter %v, error %v; want neither", limits, l, err)
		}
	}
}

// TestRateLimitDropsRefilledBuckets: memory follows the principals that
// called within the last sweep interval, and a bucket still short of
// tokens is kept, so dropping never hands out a burst early.
func TestRateLimitDropsRefilledBuckets(t *testing.T) {
	l, clock := newTestLimiter(t, RateLimits{Crypto: RateLimit{PerSecond: 1, Burst: 100}})
	for i := range 50 {
		admitted(t, l, fmt.Sprintf("p%d", i), rateCrypto, 1)
	}
	admitted(t, l, "slow", rateCrypto, 100) // refills in 100 s, after the next sweep
	if got := countBuckets(l); got != 51 {
		t.Fatalf("%d buckets, want 51", got)
	}
	clock.advance(rateSweepInterval)
	admitted(t, l, "p0", rateCrypto, 1) // sweeps, then takes a new full bucket
	if got := principals(l); !reflect.DeepEqual(got, []string{"p0", "slow"}) {
		t.Fatalf("buckets after a sweep: %v, want p0 (new) and slow (not refilled)", got)
	}
	if got := admitted(t, l, "slow", rateCrypto, 100); got != 60 {
		t.Fatalf("slow: admitted %d after 60 s at 1/s, want 60", got)
	}
	clock.advance(2 * rateSweepInterval)
	admitted(t, l, "p1", rateCrypto, 1)
	if got := principals(l); !reflect.DeepEqual(got, []string{"p1"}) {
		t.Fatalf("buckets after another sweep: %v, want p1", got)
	}
}

func countBuckets(l *rateLimiter) int { return len(principals(l)) }

func principals(l *rateLimiter) []string {
	var out []string
	l.buckets.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	slices.Sort(out)
	return out
}

func TestRateLimitConcurrentCallersShareOneBucket(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimits{Management: RateLimit{PerSecond: 1, Burst: 100}})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if l.allow("alice", rateManagement) == nil {
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != 100 {
		t.Fatalf("8 callers admitted %d, want the burst of 100", ok.Load())
	}
}

func TestThrottledRequestStatus(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimits{Crypto: RateLimit{PerSecond: 0.5, Burst: 1}})
	s := &Server{limits: l}
	ctx := withPeerIdentity(context.Background(), pki.Identity{Kind: pki.KindPrincipal, Principal: "alice"})
	if err := s.throttle(ctx, kmspb.KMS_Encrypt_FullMethodName); err != nil {
		t.Fatal(err)
	}
	err := statusFor(s.throttle(ctx, kmspb.KMS_Decrypt_FullMethodName))
	st := status.Convert(err)
	want := "ThrottlingException: rate exceeded for principal alice: cryptographic requests are limited to 0.5 per second (burst 1) on this node"
	if st.Code() != codes.ResourceExhausted || st.Message() != want {
		t.Fatalf("got %v %q, want ResourceExhausted %q", st.Code(), st.Message(), want)
	}
	if _, code := auditOutcome(err); code != "ThrottlingException" {
		t.Errorf("audit error code %q, want ThrottlingException", code)
	}
	if err := s.throttle(ctx, kmspb.Cluster_Status_FullMethodName); err != nil {
		t.Errorf("Cluster service: %v; it is not limited", err)
	}
	if err := s.throttle(ctx, kmspb.KMS_ListKeys_FullMethodName); err != nil {
		t.Errorf("management request: %v; only crypto is limited", err)
	}
}

func TestRateClassOf(t *testing.T) {
	crypto := []string{
		kmspb.KMS_Encrypt_FullMethodName, kmspb.KMS_Decrypt_FullMethodName, kmspb.KMS_ReEncrypt_FullMethodName,
		kmspb.KMS_GenerateDataKey_FullMethodName, kmspb.KMS_GenerateDataKeyWithoutPlaintext_FullMethodName,
		kmspb.KMS_GenerateRandom_FullMethodName,
	}
	for _, m := range crypto {
		if c := rateClassOf(m); c != rateCrypto {
			t.Errorf("%s: %v, want cryptographic", m, c)
		}
	}
	n := 0
	for _, m := range kmspb.KMS_ServiceDesc.Methods {
		full := kmsMethodPrefix + m.MethodName
		if rateClassOf(full) == rateCrypto {
			n++
			continue
		}
		if c := rateClassOf(full); c != rateManagement {
			t.Errorf("%s: %v, want management", full, c)
		}
	}
	if n != len(crypto) {
		t.Errorf("%d KMS methods are cryptographic, want %d: update this test with the new one", n, len(crypto))
	}
	for _, m := range []string{kmspb.Cluster_Status_FullMethodName, "/trent.internal.v1.Internal/Join", "/x/Encrypt"} {
		if c := rateClassOf(m); c != rateUnlimited {
			t.Errorf("%s: %v, want not limited", m, c)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	for in, want := range map[string]RateLimit{
		"1000:2000": {PerSecond: 1000, Burst: 2000},
		"50":        {PerSecond: 50},
		"0.5:1":     {PerSecond: 0.5, Burst: 1},
		"unlimited": Unlimited,
	} {
		got, err := ParseRateLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "x", "1:", "1:0", "1:-2", "1:2:3", "NaN", "Inf", "1:1.5"} {
		if got, err := ParseRateLimit(in); err == nil {
			t.Errorf("ParseRateLimit(%q) = %+v, want an error", in, got)
		}
	}
	if b := (RateLimit{PerSecond: 2.5}).burst(); b != 3 {
		t.Errorf("default burst of 2.5/s: %d, want 3", b)
	}
	if b := (RateLimit{PerSecond: 0.1}).burst(); b != 1 {
		t.Errorf("default burst of 0.1/s: %d, want 1", b)
	}
}

func TestParseOverride(t *testing.T) {
	var r RateLimits
	for _, spec := range []string{"batch@prod:crypto=5000:10000", "batch@prod:management=unlimited", "ops:management=2"} {
		if err := r.ParseOverride(spec); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
	}
	want := map[string]PrincipalRateLimits{
		"batch@prod": {Crypto: RateLimit{PerSecond: 5000, Burst: 10000}, Management: Unlimited},
		"ops":        {Management: RateLimit{PerSecond: 2}},
	}
	if !reflect.DeepEqual(r.Overrides, want) {
		t.Fatalf("overrides %+v, want %+v", r.Overrides, want)
	}
	for _, spec := range []string{"batch=1:2", "batch:crypto", "batch:other=1", ":crypto=1", "a b:crypto=1", "batch:crypto=0"} {
		if err := r.ParseOverride(spec); err == nil {
			t.Errorf("ParseOverride(%q) accepted", spec)
		}
	}
}

func TestRateLimitsValidate(t *testing.T) {
	for _, bad := range []RateLimits{
		{Crypto: RateLimit{PerSecond: -1}},
		{Management: RateLimit{PerSecond: math.NaN()}},
		{Crypto: RateLimit{PerSecond: 1, Burst: -1}},
		{Overrides: map[string]PrincipalRateLimits{"bad name": {Crypto: RateLimit{PerSecond: 1}}}},
		{Overrides: map[string]PrincipalRateLimits{"ok": {Management: RateLimit{PerSecond: -3}}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := newRateLimiter(RateLimits{Crypto: RateLimit{PerSecond: -1}}, time.Now); err == nil || !strings.Contains(err.Error(), "crypto") {
		t.Errorf("newRateLimiter with a negative rate: %v, want an error naming the crypto limit", err)
	}
}

// BenchmarkThrottle is the cost of the check on the request path, with
// every parallel caller its own principal or all one principal, against no
// limits configured. Limits are high enough never to refuse.
func BenchmarkThrottle(b *testing.B) {
	high := RateLimits{Crypto: RateLimit{PerSecond: 1e12, Burst: 1 << 30}, Management: RateLimit{PerSecond: 1e12, Burst: 1 << 30}}
	run := func(b *testing.B, limits RateLimits, shared bool) {
		l, err := newRateLimiter(limits, time.Now)
		if err != nil {
			b.Fatal(err)
		}
		s := &Server{limits: l}
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			principal := "alice"
			if !shared {
				principal = fmt.Sprintf("p%d", next.Add(1))
			}
			ctx := withPeerIdentity(context.Background(), pki.Identity{Kind: pki.KindPrincipal, Principal: principal})
			for pb.Next() {
				if err := s.throttle(ctx, kmspb.KMS_Encrypt_FullMethodName); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("unlimited", func(b *testing.B) { run(b, RateLimits{}, true) })
	b.Run("per-principal", func(b *testing.B) { run(b, high, false) })
	b.Run("one-principal", func(b *testing.B) { run(b, high, true) })
}

package transport

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// Request rate limits, as AWS KMS's request quotas: each principal has a
// token bucket for cryptographic operations and another for the rest of the
// KMS service, so a client hammering DescribeKey cannot starve its own
// Encrypt traffic, nor one principal any other. A request over its bucket
// fails with ThrottlingException before its handler runs, after
// authentication (the principal is known) and inside AuditInterceptor (the
// refusal is audited).
//
// Buckets live on the node that receives the request: a region of N nodes
// serves a principal up to N times its limit. Sharing them would put a
// round trip to other nodes on every request.
//
// The Cluster service (admin only, needed most when something is wrong)
// and the node-to-node Internal service are not limited.

// RateLimit is a token bucket: PerSecond tokens are added each second, up
// to Burst; each request takes one.
type RateLimit struct {
	PerSecond float64
	// Burst defaults to PerSecond rounded up (at least 1): a second's
	// worth of requests at once.
	Burst int
}

// Unlimited lifts a limit, where the zero RateLimit would mean "not set"
// (in PrincipalRateLimits).
var Unlimited = RateLimit{PerSecond: math.Inf(1)}

func (l RateLimit) unlimited() bool { return l.PerSecond == 0 || math.IsInf(l.PerSecond, 1) }

// maxDefaultBurst keeps the default burst of an absurd rate an int.
const maxDefaultBurst = 1 << 30

func (l RateLimit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return int(min(max(math.Ceil(l.PerSecond), 1), maxDefaultBurst))
}

// bucket returns a full bucket, or nil for no limit.
func (l RateLimit) bucket() *rate.Limiter {
	if l.unlimited() {
		return nil
	}
	return rate.NewLimiter(rate.Limit(l.PerSecond), l.burst())
}

func (l RateLimit) validate() error {
	switch {
	case math.IsNaN(l.PerSecond) || l.PerSecond < 0:
		return fmt.Errorf("rate %v: must be a positive number of requests per second", l.PerSecond)
	case l.Burst < 0:
		return fmt.Errorf("burst %d: must not be negative", l.Burst)
	}
	return nil
}

// RateLimits are the per-principal request rate limits of one node. The
// zero value limits nothing.
type RateLimits struct {
	// Crypto covers the cryptographic operations: Encrypt, Decrypt,
	// ReEncrypt, GenerateDataKey*, GenerateRandom; zero is unlimited.
	Crypto RateLimit
	// Management covers every other request of the KMS service; zero is
	// unlimited.
	Management RateLimit
	// Overrides replace the limits above for the principals named (by
	// their certificate's principal name).
	Overrides map[string]PrincipalRateLimits
}

// PrincipalRateLimits override the default limits for one principal. A
// zero RateLimit keeps the default; Unlimited lifts it.
type PrincipalRateLimits struct {
	Crypto     RateLimit
	Management RateLimit
}

// Validate reports the first limit that is not a token bucket, or an
// override for a name no certificate can carry.
func (r RateLimits) Validate() error {
	if err := r.Crypto.validate(); err != nil {
		return fmt.Errorf("crypto rate limit: %w", err)
	}
	if err := r.Management.validate(); err != nil {
		return fmt.Errorf("management rate limit: %w", err)
	}
	for principal, o := range r.Overrides {
		if err := pki.ValidatePrincipal(principal); err != nil {
			return fmt.Errorf("rate limit override: %w", err)
		}
		if err := o.Crypto.validate(); err != nil {
			return fmt.Errorf("crypto rate limit of principal %s: %w", principal, err)
		}
		if err := o.Management.validate(); err != nil {
			return fmt.Errorf("management rate limit of principal %s: %w", principal, err)
		}
	}
	return nil
}

// For returns the limits that apply to principal.
func (r RateLimits) For(principal string) PrincipalRateLimits {
	p := PrincipalRateLimits{Crypto: r.Crypto, Management: r.Management}
	if o, ok := r.Overrides[principal]; ok {
		if o.Crypto != (RateLimit{}) {
			p.Crypto = o.Crypto
		}
		if o.Management != (RateLimit{}) {
			p.Management = o.Management
		}
	}
	return p
}

// ParseRateLimit reads RATE[:BURST] (requests per second, and the bucket
// size), or "unlimited".
func ParseRateLimit(s string) (RateLimit, error) {
	if s == "unlimited" {
		return Unlimited, nil
	}
	rateText, burstText, hasBurst := strings.Cut(s, ":")
	var l RateLimit
	var err error
	if l.PerSecond, err = strconv.ParseFloat(rateText, 64); err != nil || !(l.PerSecond > 0) || math.IsInf(l.PerSecond, 0) {
		return RateLimit{}, fmt.Errorf("rate limit %q: want RATE[:BURST] with RATE a positive number of requests per second, or unlimited", s)
	}
	if hasBurst {
		if l.Burst, err = strconv.Atoi(burstText); err != nil || l.Burst < 1 {
			return RateLimit{}, fmt.Errorf("rate limit %q: BURST must be a whole number of requests, at least 1", s)
		}
	}
	return l, nil
}

// ParseOverride reads PRINCIPAL:CLASS=LIMIT, where CLASS is crypto or
// management and LIMIT is what ParseRateLimit reads, and records it in
// r.Overrides. Principal names cannot contain ':' or '='.
func (r *RateLimits) ParseOverride(spec string) error {
	who, limit, ok := strings.Cut(spec, "=")
	principal, class, ok2 := strings.Cut(who, ":")
	if !ok || !ok2 {
		return fmt.Errorf("rate limit override %q: want PRINCIPAL:CLASS=RATE[:BURST] or PRINCIPAL:CLASS=unlimited", spec)
	}
	if err := pki.ValidatePrincipal(principal); err != nil {
		return fmt.Errorf("rate limit override %q: %w", spec, err)
	}
	l, err := ParseRateLimit(limit)
	if err != nil {
		return fmt.Errorf("rate limit override %q: %w", spec, err)
	}
	o := r.Overrides[principal]
	switch class {
	case "crypto":
		o.Crypto = l
	case "management":
		o.Management = l
	default:
		return fmt.Errorf("rate limit override %q: class %q: must be crypto or management", spec, class)
	}
	if r.Overrides == nil {
		r.Overrides = make(map[string]PrincipalRateLimits)
	}
	r.Overrides[principal] = o
	return nil
}

type rateClass uint8

const (
	rateUnlimited rateClass = iota // not a KMS request
	rateCrypto
	rateManagement
)

func (c rateClass) String() string {
	if c == rateCrypto {
		return "cryptographic"
	}
	return "management"
}

var kmsMethodPrefix = "/" + kmspb.KMS_ServiceDesc.ServiceName + "/"

// rateClassOf says which bucket a request draws on. The cryptographic
// operations are those of AWS KMS's cryptographic-operations quota; the
// ones Trent does not serve yet are listed so that they count as such when
// they arrive.
func rateClassOf(fullMethod string) rateClass {
	method, ok := strings.CutPrefix(fullMethod, kmsMethodPrefix)
	if !ok {
		return rateUnlimited
	}
	switch method {
	case "Encrypt", "Decrypt", "ReEncrypt", "GenerateRandom",
		"GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
		"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
		"Sign", "Verify", "GenerateMac", "VerifyMac", "DeriveSharedSecret":
		return rateCrypto
	}
	return rateManagement
}

// rateSweepInterval is how often idle buckets are dropped.
const rateSweepInterval = time.Minute

// rateLimiter holds the buckets of the principals that have called
// recently. The check reads the bucket map without locking (sync.Map is
// made for keys written once and read many times) and locks only the
// principal's own bucket, so principals do not contend with each other.
type rateLimiter struct {
	limits RateLimits
	// limited says whether any principal is limited in a class, so that a
	// class nobody is limited in skips the map.
	limited [3]bool
	now     func() time.Time

	buckets   sync.Map     // principal → *principalBuckets
	nextSweep atomic.Int64 // unix nanoseconds
}

// principalBuckets are one principal's buckets; nil is unlimited.
type principalBuckets [3]*rate.Limiter

// unlimitedBuckets is shared by every principal limited in nothing.
var unlimitedBuckets = &principalBuckets{}

// newRateLimiter returns nil when limits limit nothing, so that the
// default costs one comparison per request.
func newRateLimiter(limits RateLimits, now func() time.Time) (*rateLimiter, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	l := &rateLimiter{limits: limits, now: now}
	l.limited[rateCrypto] = !limits.Crypto.unlimited()
	l.limited[rateManagement] = !limits.Management.unlimited()
	for _, o := range limits.Overrides {
		l.limited[rateCrypto] = l.limited[rateCrypto] || !o.Crypto.unlimited()
		l.limited[rateManagement] = l.limited[rateManagement] || !o.Management.unlimited()
	}
	if !l.limited[rateCrypto] && !l.limited[rateManagement] {
		return nil, nil
	}
	l.nextSweep.Store(now().Add(rateSweepInterval).UnixNano())
	return l, nil
}

// allow takes a token from principal's bucket for class, or returns an
// error wrapping ErrThrottled.
func (l *rateLimiter) allow(principal string, class rateClass) error {
	if !l.limited[class] {
		return nil
	}
	now := l.now()
	l.maybeSweep(now)
	lim := l.bucketsOf(principal)[class]
	if lim == nil || lim.AllowN(now, 1) {
		return nil
	}
	return fmt.Errorf("%w for principal %s: %s requests are limited to %g per second (burst %d) on this node",
		ErrThrottled, principal, class, float64(lim.Limit()), lim.Burst())
}

func (l *rateLimiter) bucketsOf(principal string) *principalBuckets {
	if v, ok := l.buckets.Load(principal); ok {
		return v.(*principalBuckets)
	}
	p := l.limits.For(principal)
	b := unlimitedBuckets
	if !p.Crypto.unlimited() || !p.Management.unlimited() {
		b = &principalBuckets{rateCrypto: p.Crypto.bucket(), rateManagement: p.Management.bucket()}
	}
	v, _ := l.buckets.LoadOrStore(principal, b)
	return v.(*principalBuckets)
}

// maybeSweep drops, at most once per rateSweepInterval, the buckets that
// have refilled: a full bucket behaves as a new one, so memory stays in
// proportion to the principals active in the last interval. A request
// racing the sweep may draw on a bucket as it is dropped; its principal
// then gets at most one extra burst.
func (l *rateLimiter) maybeSweep(now time.Time) {
	next := l.nextSweep.Load()
	if now.UnixNano() < next || !l.nextSweep.CompareAndSwap(next, now.Add(rateSweepInterval).UnixNano()) {
		return
	}
	l.buckets.Range(func(principal, v any) bool {
		if full(v.(*principalBuckets), now) {
			l.buckets.CompareAndDelete(principal, v)
		}
		return true
	})
}

func full(b *principalBuckets, now time.Time) bool {
	for _, lim := range b {
		if lim != nil && lim.TokensAt(now) < float64(lim.Burst()) {
			return false
		}
	}
	return true
}

// throttle refuses a KMS request over its principal's rate limit.
func (s *Server) throttle(ctx context.Context, fullMethod string) error {
	if s.limits == nil {
		return nil
	}
	class := rateClassOf(fullMethod)
	if class == rateUnlimited {
		return nil
	}
	return s.limits.allow(callerFrom(ctx).Principal, class)
}

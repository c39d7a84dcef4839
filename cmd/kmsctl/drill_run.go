package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
)

// drillActions cut the primary region off and bring it back: the drill's
// only actions outside the KMS API, so a test can supply its own.
type drillActions interface {
	// Cut cuts the region off and returns when it did, or the zero time
	// when it cannot know (an operator did it): the drill then takes the
	// moment it sees the region's endpoint fail.
	Cut(ctx context.Context) (time.Time, error)
	// Restore brings the region back; the drill then waits until its
	// endpoint answers.
	Restore(ctx context.Context) error
}

const (
	// drillPoll is how often the drill looks again at a condition: often
	// enough to time failover and convergence to a fraction of a second,
	// seldom enough that polling a few keys is no load on the regions.
	drillPoll = 200 * time.Millisecond
	// drillCallTimeout bounds one request. A region cut off by a firewall
	// drops packets rather than refusing them, and a drill must notice.
	drillCallTimeout = 10 * time.Second
	// drillProbeTimeout bounds one request of the probe that tells whether
	// the primary region is cut off.
	drillProbeTimeout = 2 * time.Second
)

// dialDrillRegions connects to the node given for each region. The
// connections retry within a second, not gRPC's default of up to two
// minutes: the drill times how soon the restored region serves again and
// must not measure its own connection's backoff instead.
func dialDrillRegions(cfg *drillConfig) (map[string]kmspb.KMSClient, func(), error) {
	clients := make(map[string]kmspb.KMSClient)
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for _, region := range []string{cfg.primary, cfg.survivor} {
		endpoint := cfg.endpoints[region]
		host, _, err := net.SplitHostPort(endpoint)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s endpoint: %w", region, err)
		}
		creds, err := clientCredentials(cfg.tlsDir, host)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(creds), grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("%s endpoint %s: %w", region, endpoint, err)
		}
		conns = append(conns, conn)
		clients[region] = kmspb.NewKMSClient(conn)
	}
	return clients, closeAll, nil
}

// drill is one run: its configuration, what it made and the report.
type drill struct {
	ctx     context.Context
	cfg     *drillConfig
	kms     map[string]kmspb.KMSClient
	actions drillActions
	log     io.Writer
	runID   string
	keys    []*drillKey
	cts     []*drillCiphertext
	t0      time.Time // when the primary was cut off
	report  *drillReport
	// stepDeadline ends the retries of reads in the running step, and
	// retried counts them for the step's notes.
	stepDeadline time.Time
	retried      int
}

// drillKey is a key the drill made and what it recorded about it.
type drillKey struct {
	id             string
	initialVersion string
	// rotatedBefore are the rotations listed, in either region, before
	// the cut: each must be listed in both regions at the end.
	rotatedBefore []string
	epochBefore   uint64
	// failoverVersion is the rotation made in the survivor after the
	// forced failover, pending until the old primary acks it.
	failoverVersion string
	// primary is the region that should be primary once the regions
	// converge: the survivor, unless its promotion failed.
	primary string
}

// drillCiphertext is a ciphertext the drill made; every one must decrypt
// to its plaintext in both regions at the end.
type drillCiphertext struct {
	key       *drillKey
	label     string // where and when it was made, for errors
	plaintext []byte
	blob      []byte
	beforeCut bool
}

// runDrill runs the drill's steps in order and returns the report. A step
// that cannot go on skips the rest, except that a region once cut is
// always restored.
func runDrill(ctx context.Context, cfg *drillConfig, kms map[string]kmspb.KMSClient, actions drillActions, log io.Writer) *drillReport {
	runID := time.Now().UTC().Format("20060102T150405Z")
	d := &drill{
		ctx: ctx, cfg: cfg, kms: kms, actions: actions, log: log, runID: runID,
		report: &drillReport{RunID: runID, PrimaryRegion: cfg.primary, SurvivorRegion: cfg.survivor, Keys: []string{}},
	}
	d.logf("run %s: primary %s (%s), survivor %s (%s), %s", d.runID,
		cfg.primary, cfg.endpoints[cfg.primary], cfg.survivor, cfg.endpoints[cfg.survivor], plural(cfg.keys, "key"))
	ok := d.step("setup", d.setup)
	cut := ok && d.step("cut", d.cut)
	if ok && cut {
		d.step("failover", d.failover)
	} else {
		d.skip("failover", "the primary was not cut off")
	}
	restored := false
	if ok {
		// Even after a failed cut: part of the region may be down.
		restored = d.step("restore", d.restore)
	} else {
		d.skip("restore", "nothing was cut")
	}
	converged := false
	if restored && cut {
		converged = d.step("convergence", d.converge) && d.report.step("convergence").Result == drillOK
		d.step("verify", d.verify)
	} else {
		why := "the primary is not back"
		if !cut {
			why = "the primary was not cut off"
		}
		d.skip("convergence", why)
		d.skip("verify", why)
	}
	switch {
	case !cfg.failback:
		d.skip("failback", "not asked for (--failback)")
	case !converged:
		d.skip("failback", "the regions did not converge")
	default:
		d.step("failback", d.failbackStep)
	}
	switch {
	case !cfg.cleanup:
		d.skip("cleanup", "not asked for (--cleanup)")
	case ok && !restored:
		d.skip("cleanup", "the primary is not back")
	default:
		// Also after a failed setup: the keys it made are deleted too.
		d.step("cleanup", d.cleanup)
	}
	d.report.finish()
	return d.report
}

func (d *drill) logf(format string, args ...any) {
	fmt.Fprintf(d.log, "drill: "+format+"\n", args...)
}

// step runs fn as the step name and records its duration, notes and
// errors. fn returns an error when the drill cannot go on; problems that
// leave the drill going are added with s.errorf. step reports whether the
// drill can go on.
func (d *drill) step(name string, fn func(ctx context.Context, s *drillStep) error) bool {
	s := &drillStep{Name: name}
	d.report.Steps = append(d.report.Steps, s)
	d.logf("%s", name)
	start := time.Now()
	d.stepDeadline, d.retried = start.Add(d.cfg.timeout), 0
	err := fn(d.ctx, s)
	s.DurationMillis = time.Since(start).Milliseconds()
	if d.retried > 0 {
		s.notef("%d requests retried while a node had no leader or did not answer", d.retried)
	}
	if err != nil {
		s.Errors = append(s.Errors, err.Error())
	}
	s.Result = drillOK
	if len(s.Errors) > 0 {
		s.Result = drillFail
		for _, e := range s.Errors {
			d.logf("%s: error: %s", name, e)
		}
	}
	d.logf("%s: %s (%s)", name, s.Result, seconds(s.DurationMillis))
	return err == nil
}

func (d *drill) skip(name, why string) {
	d.report.Steps = append(d.report.Steps, &drillStep{Name: name, Result: drillSkipped, Notes: []string{why}})
}

func (s *drillStep) notef(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

func (s *drillStep) errorf(format string, args ...any) {
	s.Errors = append(s.Errors, fmt.Sprintf(format, args...))
}

// call bounds one request.
func call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, drillCallTimeout)
}

// apiError names a failed request the way kmsctl reports server errors.
func apiError(op, region string, err error) error {
	code, msg := serviceErrorCode(err)
	return fmt.Errorf("%s in %s: %s: %s", op, region, code, msg)
}

// waitFor polls cond until it holds or the drill's timeout passes; cond
// says what is still missing, and the timeout error repeats it.
func (d *drill) waitFor(ctx context.Context, what string, cond func(ctx context.Context) (bool, string)) error {
	deadline := time.Now().Add(d.cfg.timeout)
	tick := time.NewTicker(drillPoll)
	defer tick.Stop()
	for {
		done, missing := cond(ctx)
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %s", d.cfg.timeout, what, missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// retry repeats a write until it succeeds, fails in a way that retrying
// cannot change, or the drill's timeout passes.
func (d *drill) retry(ctx context.Context, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(d.cfg.timeout)
	tick := time.NewTicker(drillPoll)
	defer tick.Stop()
	for {
		err := op(ctx)
		if err == nil || permanentError(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-tick.C:
		}
	}
}

// permanentError reports whether err says the request itself is wrong, as
// opposed to the region being unreachable or electing a leader.
func permanentError(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.Unauthenticated,
		codes.Unimplemented, codes.FailedPrecondition, codes.AlreadyExists:
		return true
	}
	return false
}

// again sends a request that changes nothing (a read, or Encrypt) and
// sends it again while it fails because the node has no leader or does not
// answer, until the step's deadline: the drill checks what the regions
// hold, and an election in a region is not a loss. Writes are not sent
// again: after such a failure their outcome is unknown.
func (d *drill) again(ctx context.Context, send func(ctx context.Context) error) error {
	for {
		cctx, cancel := call(ctx)
		err := send(cctx)
		cancel()
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
		default:
			return err
		}
		if time.Now().After(d.stepDeadline) {
			return err
		}
		d.retried++
		select {
		case <-ctx.Done():
			return err
		case <-time.After(drillPoll):
		}
	}
}

func (d *drill) describe(ctx context.Context, region, id string) (*kmspb.KeyMetadata, error) {
	var out *kmspb.DescribeKeyResponse
	err := d.again(ctx, func(ctx context.Context) (err error) {
		out, err = d.kms[region].DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: id})
		return err
	})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("%w: %w", errNoSuchKey, apiError("DescribeKey", region, err))
	}
	if err != nil {
		return nil, apiError("DescribeKey", region, err)
	}
	return out.GetKeyMetadata(), nil
}

// errNoSuchKey is wrapped by describe's error when the region has no such
// key.
var errNoSuchKey = errors.New("no such key")

// rotations lists a key's rotations (KeyMaterialIds) in region, every page.
func (d *drill) rotations(ctx context.Context, region, id string) ([]string, error) {
	var ids []string
	_, _, err := fetchPages("", false, func(marker string) (string, bool, error) {
		var out *kmspb.ListKeyRotationsResponse
		err := d.again(ctx, func(ctx context.Context) (err error) {
			out, err = d.kms[region].ListKeyRotations(ctx, &kmspb.ListKeyRotationsRequest{KeyId: id, Limit: 1000, Marker: marker})
			return err
		})
		if err != nil {
			return "", false, apiError("ListKeyRotations", region, err)
		}
		for _, r := range out.GetRotations() {
			ids = append(ids, r.GetKeyMaterialId())
		}
		return out.GetNextMarker(), out.GetTruncated(), nil
	})
	return ids, err
}

// encrypt makes and records a ciphertext of k in region.
func (d *drill) encrypt(ctx context.Context, k *drillKey, region, when string) error {
	label := fmt.Sprintf("%s, made in %s", when, region)
	plaintext := fmt.Appendf(nil, "kmsctl drill %s: %s: %s", d.runID, k.id, label)
	var out *kmspb.EncryptResponse
	err := d.again(ctx, func(ctx context.Context) (err error) {
		out, err = d.kms[region].Encrypt(ctx, &kmspb.EncryptRequest{KeyId: k.id, Plaintext: plaintext})
		return err
	})
	if err != nil {
		return fmt.Errorf("key %s: %w", k.id, apiError("Encrypt", region, err))
	}
	d.cts = append(d.cts, &drillCiphertext{key: k, label: label, plaintext: plaintext, blob: out.GetCiphertextBlob(), beforeCut: d.t0.IsZero()})
	return nil
}

// decrypt checks that ct decrypts to its plaintext under its key in region.
func (d *drill) decrypt(ctx context.Context, ct *drillCiphertext, region string) error {
	var out *kmspb.DecryptResponse
	err := d.again(ctx, func(ctx context.Context) (err error) {
		out, err = d.kms[region].Decrypt(ctx, &kmspb.DecryptRequest{CiphertextBlob: ct.blob, KeyId: ct.key.id})
		return err
	})
	switch {
	case err != nil:
		err = apiError("Decrypt", region, err)
	case string(out.GetPlaintext()) != string(ct.plaintext):
		err = fmt.Errorf("decrypted in %s to another plaintext", region)
	}
	if err != nil {
		return fmt.Errorf("key %s: ciphertext %s: %w", ct.key.id, ct.label, err)
	}
	return nil
}

// decryptAll decrypts every recorded ciphertext in region and returns the
// ones that failed.
func (d *drill) decryptAll(ctx context.Context, s *drillStep, region string) []*drillCiphertext {
	var failed []*drillCiphertext
	for _, ct := range d.cts {
		if err := d.decrypt(ctx, ct, region); err != nil {
			s.errorf("%v", err)
			failed = append(failed, ct)
		}
	}
	return failed
}

// replicaOf is region's entry in a primary's configuration.
func replicaOf(md *kmspb.KeyMetadata, region string) *kmspb.MultiRegionKey {
	for _, r := range md.GetMultiRegionConfiguration().GetReplicaKeys() {
		if r.GetRegion() == region {
			return r
		}
	}
	return nil
}

// setup makes the keys, replicates them, encrypts in both regions, rotates
// once at the primary and encrypts again. Any failure stops the drill
// before the cut: there is nothing to rehearse on a deployment that does
// not work.
func (d *drill) setup(ctx context.Context, s *drillStep) error {
	p, sv := d.cfg.primary, d.cfg.survivor
	for i := range d.cfg.keys {
		desc := fmt.Sprintf("kmsctl drill %s: key %d of %d", d.runID, i+1, d.cfg.keys)
		cctx, cancel := call(ctx)
		out, err := d.kms[p].CreateKey(cctx, &kmspb.CreateKeyRequest{MultiRegion: true, Description: desc})
		cancel()
		if err != nil {
			return apiError("CreateKey --multi-region", p, err)
		}
		id := out.GetKeyMetadata().GetKeyId()
		if !strings.HasPrefix(id, "mrk-") {
			return fmt.Errorf("CreateKey --multi-region in %s made %q, not a multi-region key", p, id)
		}
		d.keys = append(d.keys, &drillKey{id: id, primary: sv})
		d.report.Keys = append(d.report.Keys, id)
		cctx, cancel = call(ctx)
		_, err = d.kms[p].ReplicateKey(cctx, &kmspb.ReplicateKeyRequest{KeyId: id, ReplicaRegion: sv, Description: desc + " (replica)"})
		cancel()
		if err != nil {
			return fmt.Errorf("key %s: %w", id, apiError("ReplicateKey to "+sv, p, err))
		}
	}
	d.logf("setup: %s made in %s, waiting for the replicas in %s", plural(len(d.keys), "key"), p, sv)
	if err := d.waitFor(ctx, "every replica to be ACTIVE and caught up", d.allKeys(func(ctx context.Context, k *drillKey) (bool, string) {
		return d.converged(ctx, k, p, sv, "")
	})); err != nil {
		return err
	}
	for _, k := range d.keys {
		md, err := d.describe(ctx, p, k.id)
		if err != nil {
			return fmt.Errorf("key %s: %w", k.id, err)
		}
		k.initialVersion = md.GetCurrentKeyMaterialId()
		for _, region := range []string{p, sv} {
			if err := d.encrypt(ctx, k, region, "before the rotation"); err != nil {
				return err
			}
		}
	}

	rotated := make(map[*drillKey]string)
	for _, k := range d.keys {
		id, err := d.rotate(ctx, k, p)
		if err != nil {
			return err
		}
		rotated[k] = id
	}
	d.logf("setup: rotated each key in %s, waiting until %s has the new versions and Encrypt uses them", p, sv)
	if err := d.waitFor(ctx, "each rotation to reach the survivor and be used", d.allKeys(func(ctx context.Context, k *drillKey) (bool, string) {
		return d.converged(ctx, k, p, sv, rotated[k])
	})); err != nil {
		return err
	}

	for _, k := range d.keys {
		for _, region := range []string{p, sv} {
			if err := d.encrypt(ctx, k, region, "after the rotation"); err != nil {
				return err
			}
		}
		listed := make(map[string][]string)
		for _, region := range []string{p, sv} {
			ids, err := d.rotations(ctx, region, k.id)
			if err != nil {
				return fmt.Errorf("key %s: %w", k.id, err)
			}
			listed[region] = ids
			for _, id := range ids {
				if !slices.Contains(k.rotatedBefore, id) {
					k.rotatedBefore = append(k.rotatedBefore, id)
				}
			}
		}
		md, err := d.describe(ctx, sv, k.id)
		if err != nil {
			return fmt.Errorf("key %s: %w", k.id, err)
		}
		k.epochBefore = md.GetMultiRegionConfiguration().GetEpoch()
		d.report.KeyDetails = append(d.report.KeyDetails, &drillKeyDetail{
			KeyID: k.id, InitialKeyMaterialID: k.initialVersion, RotationsBeforeCut: listed, EpochBeforeCut: k.epochBefore,
		})
	}
	s.notef("%s made in %s and replicated to %s", plural(len(d.keys), "key"), p, sv)
	s.notef("each rotated once in %s; the new versions reached %s before Encrypt used them", p, sv)
	s.notef("%d ciphertexts made in both regions", len(d.cts))
	return nil
}

// rotate rotates k on demand in region and returns the new version's
// KeyMaterialId: the one listed afterwards that was not before.
func (d *drill) rotate(ctx context.Context, k *drillKey, region string) (string, error) {
	before, err := d.rotations(ctx, region, k.id)
	if err != nil {
		return "", fmt.Errorf("key %s: %w", k.id, err)
	}
	cctx, cancel := call(ctx)
	_, err = d.kms[region].RotateKeyOnDemand(cctx, &kmspb.RotateKeyOnDemandRequest{KeyId: k.id})
	cancel()
	if err != nil {
		return "", fmt.Errorf("key %s: %w", k.id, apiError("RotateKeyOnDemand", region, err))
	}
	after, err := d.rotations(ctx, region, k.id)
	if err != nil {
		return "", fmt.Errorf("key %s: %w", k.id, err)
	}
	for _, id := range after {
		if !slices.Contains(before, id) {
			return id, nil
		}
	}
	return "", fmt.Errorf("key %s: RotateKeyOnDemand in %s succeeded but ListKeyRotations lists no new version", k.id, region)
}

// allKeys turns a per-key condition into one over every key, naming the
// first key that does not meet it.
func (d *drill) allKeys(cond func(ctx context.Context, k *drillKey) (bool, string)) func(ctx context.Context) (bool, string) {
	return func(ctx context.Context) (bool, string) {
		for _, k := range d.keys {
			if ok, missing := cond(ctx, k); !ok {
				return false, fmt.Sprintf("key %s: %s", k.id, missing)
			}
		}
		return true, ""
	}
}

// converged reports whether both regions agree on k: primary is the
// primary in both under the same epoch, replica is ACTIVE and has acked
// every change, both list the same rotations, including every one from
// before the cut, and Encrypt uses the same version in both (current,
// when given). Otherwise it says what differs.
func (d *drill) converged(ctx context.Context, k *drillKey, primary, replica, current string) (bool, string) {
	pmd, err := d.describe(ctx, primary, k.id)
	if err != nil {
		return false, err.Error()
	}
	rmd, err := d.describe(ctx, replica, k.id)
	if err != nil {
		return false, err.Error()
	}
	pc, rc := pmd.GetMultiRegionConfiguration(), rmd.GetMultiRegionConfiguration()
	switch {
	case pc.GetMultiRegionKeyType() != "PRIMARY" || pc.GetPrimaryKey().GetRegion() != primary:
		return false, fmt.Sprintf("%s is %s with primary %s, want PRIMARY", primary, pc.GetMultiRegionKeyType(), pc.GetPrimaryKey().GetRegion())
	case rc.GetMultiRegionKeyType() != "REPLICA" || rc.GetPrimaryKey().GetRegion() != primary:
		return false, fmt.Sprintf("%s is %s with primary %s, want REPLICA of %s", replica, rc.GetMultiRegionKeyType(), rc.GetPrimaryKey().GetRegion(), primary)
	case pc.GetEpoch() != rc.GetEpoch():
		return false, fmt.Sprintf("epoch %d in %s, %d in %s", pc.GetEpoch(), primary, rc.GetEpoch(), replica)
	}
	rep := replicaOf(pmd, replica)
	switch {
	case rep == nil:
		return false, fmt.Sprintf("%s does not list %s as a replica", primary, replica)
	case rep.GetStatus() != "ACTIVE" || rep.GetAckedChange() != pc.GetSharedChange():
		missing := fmt.Sprintf("%s sees %s %s, acked change %d of %d", primary, replica, rep.GetStatus(), rep.GetAckedChange(), pc.GetSharedChange())
		if rep.GetLastError() != "" {
			missing += ", last error: " + rep.GetLastError()
		}
		return false, missing
	case rmd.GetKeyState() == "Creating":
		return false, fmt.Sprintf("the replica in %s is still Creating", replica)
	}
	pr, err := d.rotations(ctx, primary, k.id)
	if err != nil {
		return false, err.Error()
	}
	rr, err := d.rotations(ctx, replica, k.id)
	if err != nil {
		return false, err.Error()
	}
	if !sameSet(pr, rr) {
		return false, fmt.Sprintf("%s lists rotations %v, %s %v", primary, pr, replica, rr)
	}
	for _, v := range append(slices.Clone(k.rotatedBefore), k.failoverVersion) {
		if v != "" && !slices.Contains(pr, v) {
			return false, fmt.Sprintf("version %s is not listed", v)
		}
	}
	if current != "" && !slices.Contains(pr, current) {
		return false, fmt.Sprintf("version %s is not listed", current)
	}
	pcur, rcur := pmd.GetCurrentKeyMaterialId(), rmd.GetCurrentKeyMaterialId()
	switch {
	case pcur != rcur:
		return false, fmt.Sprintf("Encrypt uses version %s in %s, %s in %s", pcur, primary, rcur, replica)
	case current != "" && pcur != current:
		return false, fmt.Sprintf("version %s is still pending (Encrypt uses %s)", current, pcur)
	}
	return true, ""
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// probe reports whether region answers a request about the drill's first
// key.
func (d *drill) probe(ctx context.Context, region string) error {
	ctx, cancel := context.WithTimeout(ctx, drillProbeTimeout)
	defer cancel()
	if _, err := d.kms[region].DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: d.keys[0].id}); err != nil {
		return apiError("DescribeKey", region, err)
	}
	return nil
}

// cut cuts the primary off and waits until its endpoint fails.
func (d *drill) cut(ctx context.Context, s *drillStep) error {
	p := d.cfg.primary
	cutAt, err := d.actions.Cut(ctx)
	if err != nil {
		return fmt.Errorf("cutting %s off: %w", p, err)
	}
	var failedAt time.Time
	if err := d.waitFor(ctx, p+" to stop answering", func(ctx context.Context) (bool, string) {
		// A region cut off by dropped packets fails a probe only at its
		// timeout; it was unreachable when the probe was sent.
		sent := time.Now()
		if err := d.probe(ctx, p); err != nil {
			failedAt = sent
			return true, ""
		}
		return false, p + " still answers DescribeKey"
	}); err != nil {
		return err
	}
	d.t0 = cutAt
	if d.t0.IsZero() {
		d.t0 = failedAt
	}
	d.report.CutTime = d.t0.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	s.notef("%s unreachable from %s", p, d.t0.Format("15:04:05.000"))
	return nil
}

// failover promotes the survivor by force, key by key side by side, then
// checks that it serves: decrypt, encrypt, rotate.
func (d *drill) failover(ctx context.Context, s *drillStep) error {
	p, sv := d.cfg.primary, d.cfg.survivor
	promotedAt := make([]time.Time, len(d.keys))
	errs := make([]error, len(d.keys))
	var wg sync.WaitGroup
	for i, k := range d.keys {
		wg.Go(func() {
			errs[i] = d.retry(ctx, func(ctx context.Context) error {
				ctx, cancel := call(ctx)
				defer cancel()
				_, err := d.kms[sv].UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: k.id, PrimaryRegion: sv, Force: true})
				return err
			})
			promotedAt[i] = time.Now()
		})
	}
	wg.Wait()
	rto := &drillRTO{Keys: len(d.keys)}
	var first, last time.Time
	for i, k := range d.keys {
		if errs[i] != nil {
			k.primary = p
			s.errorf("key %s: %v", k.id, apiError("UpdatePrimaryRegion --force", sv, errs[i]))
			continue
		}
		rto.Promoted++
		if first.IsZero() || promotedAt[i].Before(first) {
			first = promotedAt[i]
		}
		if promotedAt[i].After(last) {
			last = promotedAt[i]
		}
	}
	if rto.Promoted > 0 {
		rto.FirstWriteMillis = ptrTo(first.Sub(d.t0).Milliseconds())
	}
	if rto.Promoted == len(d.keys) {
		rto.AllWritesMillis = ptrTo(last.Sub(d.t0).Milliseconds())
	}
	d.report.RTO = rto
	s.notef("%d of %s promoted in %s by force", rto.Promoted, plural(rto.Keys, "key"), sv)

	for _, k := range d.keys {
		if k.primary != sv {
			continue
		}
		md, err := d.describe(ctx, sv, k.id)
		if err != nil {
			s.errorf("key %s: %v", k.id, err)
			continue
		}
		c := md.GetMultiRegionConfiguration()
		if c.GetMultiRegionKeyType() != "PRIMARY" || c.GetPrimaryKey().GetRegion() != sv || c.GetEpoch() <= k.epochBefore {
			s.errorf("key %s: after the forced update %s is %s with primary %s and epoch %d (was %d)",
				k.id, sv, c.GetMultiRegionKeyType(), c.GetPrimaryKey().GetRegion(), c.GetEpoch(), k.epochBefore)
		}
	}
	before := len(d.cts)
	if failed := d.decryptAll(ctx, s, sv); len(failed) == 0 {
		s.notef("all %d ciphertexts from before the cut decrypt in %s", before, sv)
	}
	made := 0
	for _, k := range d.keys {
		if err := d.encrypt(ctx, k, sv, "after the failover"); err != nil {
			s.errorf("%v", err)
			continue
		}
		made++
	}
	if made == len(d.keys) {
		s.notef("Encrypt works in %s with every key", sv)
	}

	pending, rotated := 0, 0
	for _, k := range d.keys {
		if k.primary != sv {
			continue
		}
		id, err := d.rotate(ctx, k, sv)
		if err != nil {
			s.errorf("%v", err)
			continue
		}
		k.failoverVersion = id
		rotated++
		if md, err := d.describe(ctx, sv, k.id); err != nil {
			s.errorf("key %s: %v", k.id, err)
		} else if md.GetCurrentKeyMaterialId() != id {
			pending++
		}
	}
	if rotated > 0 {
		// With the old primary a replica that cannot ack, a rotation is
		// held back from Encrypt by design; it is released at convergence.
		s.notef("RotateKeyOnDemand accepted in %s for %s; %d pending until %s returns and acks",
			sv, plural(rotated, "key"), pending, p)
	}
	return nil
}

// restore brings the primary back and waits until it answers.
func (d *drill) restore(ctx context.Context, s *drillStep) error {
	p := d.cfg.primary
	if err := d.actions.Restore(ctx); err != nil {
		return fmt.Errorf("restoring %s: %w", p, err)
	}
	if err := d.waitFor(ctx, p+" to answer again", func(ctx context.Context) (bool, string) {
		if err := d.probe(ctx, p); err != nil {
			return false, err.Error()
		}
		return true, ""
	}); err != nil {
		return err
	}
	s.notef("%s answers again", p)
	return nil
}

// converge waits until both regions agree on every key, the survivor
// primary (where promoted) and the old primary its caught-up replica,
// with the rotation made during the failover released.
func (d *drill) converge(ctx context.Context, s *drillStep) error {
	start := time.Now()
	err := d.waitFor(ctx, "both regions to agree", d.allKeys(func(ctx context.Context, k *drillKey) (bool, string) {
		return d.converged(ctx, k, k.primary, d.other(k.primary), k.failoverVersion)
	}))
	if err != nil {
		// Not fatal: verify still measures what was lost.
		s.errorf("%v", err)
		return nil
	}
	d.report.ConvergenceMillis = ptrTo(time.Since(start).Milliseconds())
	s.notef("both regions agree on every key: %s primary, same epoch, same versions", d.cfg.survivor)
	if d.keys[0].failoverVersion != "" {
		s.notef("the rotations made in %s during the failover are acked and used", d.cfg.survivor)
	}
	return nil
}

func (d *drill) other(region string) string {
	if region == d.cfg.primary {
		return d.cfg.survivor
	}
	return d.cfg.primary
}

// verify encrypts once more in both regions, then decrypts every
// ciphertext in both and checks that every version from before the cut is
// listed in both: what is not counts toward the RPO.
func (d *drill) verify(ctx context.Context, s *drillStep) error {
	for _, k := range d.keys {
		for _, region := range []string{d.cfg.primary, d.cfg.survivor} {
			if err := d.encrypt(ctx, k, region, "after the restore"); err != nil {
				s.errorf("%v", err)
			}
		}
	}
	rpo := &drillRPO{MissingVersions: []string{}, UndecryptableCiphertexts: []string{}}
	failed := make(map[*drillCiphertext]bool)
	for _, region := range []string{d.cfg.primary, d.cfg.survivor} {
		for _, ct := range d.decryptAll(ctx, s, region) {
			if !failed[ct] && ct.beforeCut {
				rpo.UndecryptableCiphertexts = append(rpo.UndecryptableCiphertexts, ct.key.id+": "+ct.label)
			}
			failed[ct] = true
		}
	}
	for _, k := range d.keys {
		rpo.VersionsBeforeCut += 1 + len(k.rotatedBefore)
		missing := make(map[string][]string)
		for _, region := range []string{d.cfg.primary, d.cfg.survivor} {
			ids, err := d.rotations(ctx, region, k.id)
			if err != nil {
				s.errorf("key %s: %v", k.id, err)
				continue
			}
			for _, v := range k.rotatedBefore {
				if !slices.Contains(ids, v) {
					missing[v] = append(missing[v], region)
				}
			}
		}
		for _, v := range slices.Sorted(maps.Keys(missing)) {
			s.errorf("key %s: version %s from before the cut is not listed in %s", k.id, v, strings.Join(missing[v], " and "))
			rpo.MissingVersions = append(rpo.MissingVersions, k.id+": "+v)
		}
	}
	for _, ct := range d.cts {
		if ct.beforeCut {
			rpo.CiphertextsBeforeCut++
		}
	}
	rpo.Lost = len(rpo.MissingVersions) + len(rpo.UndecryptableCiphertexts)
	d.report.RPO = rpo
	s.notef("%d of %d ciphertexts decrypt in both regions", len(d.cts)-len(failed), len(d.cts))
	s.notef("RPO %s", d.report.rpoText())
	return nil
}

// failbackStep makes the original primary the primary again, planned, and
// waits until both regions agree.
func (d *drill) failbackStep(ctx context.Context, s *drillStep) error {
	p, sv := d.cfg.primary, d.cfg.survivor
	start := time.Now()
	for _, k := range d.keys {
		if k.primary != sv {
			continue
		}
		err := d.retry(ctx, func(ctx context.Context) error {
			ctx, cancel := call(ctx)
			defer cancel()
			_, err := d.kms[sv].UpdatePrimaryRegion(ctx, &kmspb.UpdatePrimaryRegionRequest{KeyId: k.id, PrimaryRegion: p})
			return err
		})
		if err != nil {
			s.errorf("key %s: %v", k.id, apiError("UpdatePrimaryRegion", sv, err))
			continue
		}
		k.primary = p
	}
	if len(s.Errors) > 0 {
		return nil
	}
	if err := d.waitFor(ctx, p+" to be the primary again in both regions", d.allKeys(func(ctx context.Context, k *drillKey) (bool, string) {
		return d.converged(ctx, k, p, sv, "")
	})); err != nil {
		return err
	}
	d.report.FailbackMillis = ptrTo(time.Since(start).Milliseconds())
	s.notef("%s is the primary of every key again, %s its caught-up replica", p, sv)
	for _, k := range d.keys {
		if err := d.encrypt(ctx, k, p, "after the failback"); err != nil {
			s.errorf("%v", err)
		}
	}
	failed := 0
	for _, region := range []string{p, sv} {
		failed += len(d.decryptAll(ctx, s, region))
	}
	if failed == 0 {
		s.notef("all %d ciphertexts decrypt in both regions", len(d.cts))
	}
	return nil
}

func ptrTo[T any](v T) *T { return &v }

package replicator

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/regions/replicator/replpb"
)

// errNoNode: no node of the destination region is known (gossip has not
// seen one, or all are down).
var errNoNode = errors.New("no node of the region is known")

// ship sends one batch to region d and records the region's answers:
// cursors advance through AckReplica at this region's Raft.
func (r *Replicator) ship(ctx context.Context, d *destination, work []item) {
	applied, err := r.shipOnce(ctx, d, work)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("replication: shipment failed", "region", d.name, "keys", len(work), "err", err)
		r.recordFailure(ctx, d.name, work, err)
	}
	d.finish(work, applied, err, r.cfg.Now(), r.cfg.MaxBackoff)
}

// recordFailure notes a failed shipment on each key's replica entry, so
// that describe-key in every node of the region shows why it lags. Only a
// new error is written: retries of the same failure add nothing to the log.
func (r *Replicator) recordFailure(ctx context.Context, region string, work []item, err error) {
	msg := err.Error()
	if st, ok := status.FromError(errors.Unwrap(err)); ok {
		msg = fmt.Sprintf("shipping to region %s failed: %s: %s", region, st.Code(), st.Message())
	}
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen]
	}
	var acks []*fsmpb.Command
	for _, it := range work {
		if !it.primary || it.replica.GetLastError() == msg {
			continue
		}
		acks = append(acks, &fsmpb.Command{Principal: systemPrincipal, Op: &fsmpb.Command_AckReplica{AckReplica: &fsmpb.AckReplica{
			KeyId: it.key.GetKeyId(), Region: region, Epoch: it.key.GetMultiRegion().GetEpoch(),
			Seq: it.replica.GetAckedSeq(), LastError: msg,
			Deleting: it.replica.GetState() == fsmpb.ReplicaState_REPLICA_STATE_DELETING,
		}}})
	}
	if err := r.proposeAll(ctx, acks); err != nil {
		r.log.Warn("replication: recording a failure failed", "region", region, "err", err)
	}
}

// proposeAll proposes cmds side by side, so that they share Raft log
// writes, and returns every failure.
func (r *Replicator) proposeAll(ctx context.Context, cmds []*fsmpb.Command) error {
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() {
			if _, err := r.cfg.Propose(ctx, cmd); err != nil {
				errs[i] = fmt.Errorf("%s: %w", commandKey(cmd), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// commandKey names the key an ack command is about, for errors.
func commandKey(cmd *fsmpb.Command) string {
	switch op := cmd.GetOp().(type) {
	case *fsmpb.Command_AckReplica:
		return "key " + op.AckReplica.GetKeyId()
	case *fsmpb.Command_RemoveReplica:
		return "key " + op.RemoveReplica.GetKeyId()
	}
	return "command"
}

// maxErrorLen bounds an error kept in replicated state.
const maxErrorLen = 512

func (r *Replicator) shipOnce(ctx context.Context, d *destination, work []item) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ShipTimeout)
	defer cancel()
	addrs := r.cfg.Locate(d.name)
	if len(addrs) == 0 {
		return 0, fmt.Errorf("region %s: %w", d.name, errNoNode)
	}
	var lastErr error
	for _, addr := range addrs {
		client, hello, err := r.peer(ctx, addr, d.name)
		if err != nil {
			lastErr = err
			continue
		}
		req, changes, err := r.buildRequest(ctx, d.name, hello, work)
		if err != nil {
			return 0, err
		}
		resp, err := client.Ship(ctx, req)
		if err != nil {
			// The node may have changed (new HSM, new address): ask again
			// next time.
			r.forget(addr)
			lastErr = fmt.Errorf("ship to %s: %w", addr, err)
			continue
		}
		return r.record(ctx, d, work, changes, resp)
	}
	return 0, lastErr
}

// peer returns the client for addr and the node's Hello, asking for it
// when none is known. Shipments to one address run concurrently; the Hello
// is read and replaced only under r.mu.
func (r *Replicator) peer(ctx context.Context, addr, region string) (replpb.ReplicationClient, *replpb.HelloResponse, error) {
	r.mu.Lock()
	p, ok := r.peers[addr]
	var hello *replpb.HelloResponse
	if ok {
		hello = p.hello
	}
	r.mu.Unlock()
	if hello != nil {
		return p.client, hello, nil
	}
	if !ok {
		if r.cfg.Dial == nil {
			return nil, nil, errors.New("replicator: Config.Dial is not set")
		}
		conn, err := r.cfg.Dial(addr, region)
		if err != nil {
			return nil, nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		var client replpb.ReplicationClient = replpb.NewReplicationClient(conn)
		if r.cfg.WrapClient != nil {
			client = r.cfg.WrapClient(region, client)
		}
		p = r.keepPeer(addr, &peer{conn: conn, client: client})
	}
	hello, err := p.client.Hello(ctx, &replpb.HelloRequest{})
	if err != nil {
		return nil, nil, fmt.Errorf("hello %s: %w", addr, err)
	}
	if hello.GetRegion() != region || hello.GetNodeId() == "" || len(hello.GetTransportPublicKey()) == 0 {
		return nil, nil, fmt.Errorf("hello %s: answered as region %q node %q, expected a node of %s", addr, hello.GetRegion(), hello.GetNodeId(), region)
	}
	r.mu.Lock()
	p.hello = hello
	r.mu.Unlock()
	return p.client, hello, nil
}

// keepPeer records p for addr and returns it, or the peer another
// shipment recorded first (closing p's connection).
func (r *Replicator) keepPeer(addr string, p *peer) *peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.peers[addr]; ok {
		_ = p.conn.Close()
		return cur
	}
	r.peers[addr] = p
	return p
}

func (r *Replicator) forget(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.peers[addr]; ok {
		p.hello = nil
	}
}

// buildRequest turns the claimed keys into a signed batch for the node
// hello names: key material leaves this HSM only wrapped to that node's
// transport key.
func (r *Replicator) buildRequest(ctx context.Context, dest string, hello *replpb.HelloResponse, work []item) (*replpb.ShipRequest, []*replpb.Change, error) {
	region := r.cfg.State.Region()
	changes := make([]*replpb.Change, 0, len(work))
	var (
		refs    []hsm.KeyTokenRef
		targets []*fsmpb.KeyVersion
	)
	for _, it := range work {
		c, material := r.change(it)
		for _, m := range material {
			refs = append(refs, hsm.KeyTokenRef{DomainKeyID: m.from.GetDomainKeyId(), Token: m.from.GetKeyToken()})
			targets = append(targets, m.to)
		}
		changes = append(changes, c)
	}
	var session []byte
	if len(refs) > 0 {
		var wrapped [][]byte
		var err error
		session, wrapped, err = r.cfg.HSM.ExportKeyTokens(ctx, hello.GetTransportPublicKey(), refs)
		if err != nil {
			return nil, nil, fmt.Errorf("export key material: %w", err)
		}
		for i, v := range targets {
			v.KeyToken = wrapped[i]
		}
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	batch, err := proto.MarshalOptions{Deterministic: true}.Marshal(&replpb.Batch{
		SourceRegion: region.GetName(), DestRegion: dest, DestNodeId: hello.GetNodeId(),
		SentUnixNano: r.cfg.Now().UnixNano(), Nonce: nonce, Changes: changes, SessionKey: session,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encode batch: %w", err)
	}
	sig, err := r.cfg.HSM.SignWithKeyToken(ctx, region.GetSigningDomainKeyId(), region.GetSigningKeyToken(), batchDigest(batch))
	if err != nil {
		return nil, nil, fmt.Errorf("sign batch: %w", err)
	}
	return &replpb.ShipRequest{Batch: batch, Signature: sig, SigningPublicKey: region.GetSigningPublicKey()}, changes, nil
}

// material pairs a version to ship with the shipped copy whose key_token
// receives its wrapped material.
type material struct {
	from, to *fsmpb.KeyVersion
}

// change builds one key's shipment and lists the versions whose material
// it needs. A replica gets the material of the versions added since its
// cursor (all of them when it is being created or asked for them); the
// primary gets every version shipped back.
func (r *Replicator) change(it item) (*replpb.Change, []material) {
	k, mr := it.key, it.key.GetMultiRegion()
	needs := func(v *fsmpb.KeyVersion) bool {
		return it.full || !it.primary || it.replica.GetState() == fsmpb.ReplicaState_REPLICA_STATE_CREATING ||
			v.GetAddedSeq() > it.replica.GetAckedSeq()
	}
	var (
		versions []*fsmpb.KeyVersion
		need     []material
	)
	for _, v := range k.GetVersions() {
		if !it.primary && !v.GetUnshipped() {
			continue
		}
		out := &fsmpb.KeyVersion{
			VersionId: v.GetVersionId(), CreationTimeUnixNano: v.GetCreationTimeUnixNano(),
			RotationType: v.GetRotationType(), Pending: v.GetPending(), OriginRegion: v.GetOriginRegion(),
			OriginEpoch: v.GetOriginEpoch(), AddedSeq: v.GetAddedSeq(),
		}
		if needs(v) {
			need = append(need, material{from: v, to: out})
		}
		versions = append(versions, out)
	}
	if !it.primary {
		return &replpb.Change{Change: &replpb.Change_Merge{Merge: &replpb.Merge{
			KeyId: k.GetKeyId(), PrimaryRegion: mr.GetPrimaryRegion(), Epoch: mr.GetEpoch(), Versions: versions,
			Deleting: k.GetState() == fsmpb.KeyState_KEY_STATE_PENDING_DELETION,
		}}}, need
	}
	replicas := make([]*fsmpb.Replica, len(mr.GetReplicas()))
	for i, rep := range mr.GetReplicas() {
		// Only the list and states travel; another region's policy does
		// not.
		replicas[i] = &fsmpb.Replica{Region: rep.GetRegion(), State: rep.GetState(), AckedSeq: rep.GetAckedSeq()}
	}
	if it.replica.GetState() == fsmpb.ReplicaState_REPLICA_STATE_CREATING {
		return &replpb.Change{Change: &replpb.Change_Import{Import: &fsmpb.ImportReplicaKey{Key: &fsmpb.Key{
			KeyId: k.GetKeyId(), Description: it.replica.GetDescription(), KeySpec: k.GetKeySpec(),
			KeyUsage: k.GetKeyUsage(), ProtectionLevel: k.GetProtectionLevel(), Origin: k.GetOrigin(),
			RotationEnabled: k.GetRotationEnabled(), RotationPeriodDays: k.GetRotationPeriodDays(),
			NextRotationTimeUnixNano: k.GetNextRotationTimeUnixNano(), Versions: versions,
			Tags: it.replica.GetTags(), Policy: it.replica.GetPolicy(),
			MultiRegion: &fsmpb.MultiRegion{
				PrimaryRegion: mr.GetPrimaryRegion(), Epoch: mr.GetEpoch(), AppliedSeq: mr.GetSharedSeq(),
				CurrentVersionId: mr.GetCurrentVersionId(), Replicas: replicas,
			},
		}}}}, need
	}
	return &replpb.Change{Change: &replpb.Change_Shared{Shared: &fsmpb.ApplySharedChange{
		KeyId: k.GetKeyId(), PrimaryRegion: mr.GetPrimaryRegion(), Epoch: mr.GetEpoch(), Seq: mr.GetSharedSeq(),
		Versions: versions, CurrentVersionId: mr.GetCurrentVersionId(), RotationEnabled: k.GetRotationEnabled(),
		RotationPeriodDays: k.GetRotationPeriodDays(), NextRotationTimeUnixNano: k.GetNextRotationTimeUnixNano(),
		Replicas: replicas,
	}}}, need
}

// record proposes the cursors the region's answers allow: an applied change
// advances the replica's acked seq, a failed one records its error, a
// replica whose key is gone is removed. It returns the changes applied.
func (r *Replicator) record(ctx context.Context, d *destination, work []item, changes []*replpb.Change, resp *replpb.ShipResponse) (int, error) {
	results := resp.GetResults()
	if len(results) != len(work) {
		return 0, fmt.Errorf("region %s answered %d results for %d changes", d.name, len(results), len(work))
	}
	applied := 0
	var acks []*fsmpb.Command
	for i, it := range work {
		res := results[i]
		if res.GetApplied() {
			applied++
		}
		d.needFull(it.key.GetKeyId(), res.GetNeedMaterial())
		if !it.primary {
			continue
		}
		if cmd := r.ackFor(d.name, it, changes[i], res); cmd != nil {
			acks = append(acks, cmd)
		}
	}
	if err := r.proposeAll(ctx, acks); err != nil {
		return applied, fmt.Errorf("record %s's answers: %w", d.name, err)
	}
	return applied, nil
}

// ackFor is the command recording one answer at the primary, or nil when
// it changes nothing.
func (r *Replicator) ackFor(region string, it item, c *replpb.Change, res *replpb.KeyResult) *fsmpb.Command {
	id, mr, rep := it.key.GetKeyId(), it.key.GetMultiRegion(), it.replica
	if res.GetGone() && rep.GetState() == fsmpb.ReplicaState_REPLICA_STATE_DELETING {
		return &fsmpb.Command{Principal: systemPrincipal, Op: &fsmpb.Command_RemoveReplica{RemoveReplica: &fsmpb.RemoveReplica{
			KeyId: id, Region: region,
		}}}
	}
	ack := &fsmpb.AckReplica{KeyId: id, Region: region, Epoch: mr.GetEpoch(), Seq: rep.GetAckedSeq(), Deleting: res.GetDeleting()}
	if res.GetApplied() {
		ack.Seq = seqOf(c)
	} else {
		ack.LastError = res.GetError()
		if ack.LastError == rep.GetLastError() && res.GetDeleting() == (rep.GetState() == fsmpb.ReplicaState_REPLICA_STATE_DELETING) {
			return nil
		}
	}
	return &fsmpb.Command{Principal: systemPrincipal, Op: &fsmpb.Command_AckReplica{AckReplica: ack}}
}

func seqOf(c *replpb.Change) uint64 {
	switch c := c.GetChange().(type) {
	case *replpb.Change_Import:
		return c.Import.GetKey().GetMultiRegion().GetAppliedSeq()
	case *replpb.Change_Shared:
		return c.Shared.GetSeq()
	}
	return 0
}

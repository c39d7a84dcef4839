package replicator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/regions/replicator/replpb"
)

// Hello names this node and its transport public key.
func (r *Replicator) Hello(ctx context.Context) (*replpb.HelloResponse, error) {
	region := r.cfg.State.Region()
	if region == nil {
		return nil, ErrNotReady
	}
	pub, err := r.cfg.HSM.TransportPublicKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("transport key: %w", err)
	}
	return &replpb.HelloResponse{Region: region.GetName(), NodeId: r.cfg.NodeID, TransportPublicKey: pub}, nil
}

// Ship verifies and applies a batch sent by a node of region from (as its
// certificate says). Refusals of the whole batch are logged: they mean a
// forged, replayed or misrouted message. Each change's own outcome is in
// its KeyResult.
func (r *Replicator) Ship(ctx context.Context, from string, req *replpb.ShipRequest) (*replpb.ShipResponse, error) {
	batch, err := r.admit(ctx, from, req)
	if err != nil {
		if !errors.Is(err, ErrNotReady) {
			r.log.Warn("replication: shipment refused", "from_region", from, "err", err)
		}
		return nil, err
	}
	if err := r.importMaterial(ctx, batch); err != nil {
		return nil, err
	}
	// Changes of distinct keys are independent: applied side by side,
	// their Raft proposals share log writes and the HSM works on several.
	results := make([]*replpb.KeyResult, len(batch.GetChanges()))
	var wg sync.WaitGroup
	for i, c := range batch.GetChanges() {
		wg.Go(func() { results[i] = r.apply(ctx, from, c) })
	}
	wg.Wait()
	return &replpb.ShipResponse{Results: results}, nil
}

// admit checks a batch's signature, origin, destination and freshness, and
// pins the source region's signing key on first contact.
func (r *Replicator) admit(ctx context.Context, from string, req *replpb.ShipRequest) (*replpb.Batch, error) {
	region := r.cfg.State.Region()
	if region == nil {
		return nil, ErrNotReady
	}
	here := region.GetName()
	if from == "" || from == here {
		return nil, fmt.Errorf("%w: sender region %q; shipments come from other regions", ErrMisdirected, from)
	}
	pinned, isPinned := region.GetPeerSigningKeys()[from]
	if isPinned && !bytes.Equal(pinned, req.GetSigningPublicKey()) {
		return nil, fmt.Errorf("%w: signed with another key than the one pinned for region %s", ErrForged, from)
	}
	if err := verifyBatch(req.GetSigningPublicKey(), req.GetBatch(), req.GetSignature()); err != nil {
		return nil, err
	}
	batch := new(replpb.Batch)
	if err := proto.Unmarshal(req.GetBatch(), batch); err != nil {
		return nil, fmt.Errorf("%w: batch does not decode: %v", ErrMalformed, err)
	}
	switch {
	case batch.GetSourceRegion() != from:
		return nil, fmt.Errorf("%w: batch says it comes from region %q, the sender's certificate names %q", ErrForged, batch.GetSourceRegion(), from)
	case batch.GetDestRegion() != here:
		return nil, fmt.Errorf("%w: batch is for region %q, this is %q", ErrMisdirected, batch.GetDestRegion(), here)
	case batch.GetDestNodeId() != r.cfg.NodeID:
		return nil, fmt.Errorf("%w: batch is for node %q, this is %q", ErrMisdirected, batch.GetDestNodeId(), r.cfg.NodeID)
	case len(batch.GetNonce()) < 16:
		return nil, fmt.Errorf("%w: nonce of %d bytes; needs 16", ErrMalformed, len(batch.GetNonce()))
	}
	if !r.replay.admit(batch.GetNonce(), time.Unix(0, batch.GetSentUnixNano()), r.cfg.Now()) {
		return nil, fmt.Errorf("%w: batch from %s sent at %s was seen before or is outside the %s window",
			ErrReplayed, from, time.Unix(0, batch.GetSentUnixNano()).UTC().Format(time.RFC3339Nano), r.cfg.ReplayWindow)
	}
	if !isPinned {
		if err := r.pin(ctx, from, req.GetSigningPublicKey()); err != nil {
			return nil, err
		}
	}
	return batch, nil
}

func (r *Replicator) pin(ctx context.Context, region string, key []byte) error {
	r.pinning.Lock()
	defer r.pinning.Unlock()
	_, err := r.cfg.Propose(ctx, &fsmpb.Command{Principal: systemPrincipal, Op: &fsmpb.Command_PinPeerRegion{
		PinPeerRegion: &fsmpb.PinPeerRegion{Region: region, PublicKey: key},
	}})
	if errors.Is(err, fsm.ErrInvalidState) {
		// Pinned meanwhile (this node had not applied the pin yet) to
		// another key: the Raft log decides, and it says forged.
		return fmt.Errorf("%w: signed with another key than the one pinned for region %s", ErrForged, region)
	}
	if err != nil {
		return fmt.Errorf("pin region %s's signing key: %w", region, err)
	}
	r.log.Info("replication: pinned a region's signing key on first contact", "region", region)
	return nil
}

// apply applies one change through Raft and says what the region now holds.
func (r *Replicator) apply(ctx context.Context, from string, c *replpb.Change) *replpb.KeyResult {
	var (
		keyID   string
		primary string
		epoch   uint64
		cmds    []*fsmpb.Command
		missing bool
		err     error
	)
	principal := systemPrincipal + "/" + from
	switch c := c.GetChange().(type) {
	case *replpb.Change_Import:
		k := proto.Clone(c.Import.GetKey()).(*fsmpb.Key)
		keyID, primary, epoch = k.GetKeyId(), k.GetMultiRegion().GetPrimaryRegion(), k.GetMultiRegion().GetEpoch()
		if missing = lacksMaterial(k.GetVersions()); !missing {
			cmds = append(cmds, &fsmpb.Command{Op: &fsmpb.Command_ImportReplicaKey{ImportReplicaKey: &fsmpb.ImportReplicaKey{Key: k}}})
		}
	case *replpb.Change_Shared:
		op := proto.Clone(c.Shared).(*fsmpb.ApplySharedChange)
		keyID, primary, epoch = op.GetKeyId(), op.GetPrimaryRegion(), op.GetEpoch()
		_, held := r.cfg.State.Key(keyID)
		// Without the key (deleted here, as a probe of a replica pending
		// deletion finds), the leader's Apply says so: NotFound, gone.
		if missing = held && lacksMaterial(op.GetVersions()); !missing {
			cmds = append(cmds, &fsmpb.Command{Op: &fsmpb.Command_ApplySharedChange{ApplySharedChange: op}})
		}
	case *replpb.Change_Merge:
		m := c.Merge
		keyID = m.GetKeyId()
		versions := m.GetVersions()
		if missing = lacksMaterial(versions); !missing {
			cmds = append(cmds, r.promotion(m)...)
			if len(versions) > 0 {
				cmds = append(cmds, &fsmpb.Command{Op: &fsmpb.Command_MergeKeyVersions{MergeKeyVersions: &fsmpb.MergeKeyVersions{
					KeyId: keyID, Versions: versions,
				}}})
			}
			cmds = append(cmds, r.deletionReport(from, m)...)
			if len(cmds) == 0 {
				return &replpb.KeyResult{KeyId: keyID, Applied: true}
			}
		}
	default:
		return &replpb.KeyResult{Error: "change carries nothing"}
	}
	res := &replpb.KeyResult{KeyId: keyID}
	if missing {
		res.NeedMaterial = true
		res.Error = "the change lacks material of a version this region does not hold"
		return res
	}
	var out *fsm.Result
	for _, cmd := range cmds {
		cmd.Principal = principal
		if out, err = r.cfg.Propose(ctx, cmd); err != nil {
			break
		}
	}
	if err != nil {
		res.Error = err.Error()
		res.Gone = errors.Is(err, fsm.ErrNotFound)
		return res
	}
	k := out.Key
	res.Deleting = k.GetState() == fsmpb.KeyState_KEY_STATE_PENDING_DELETION
	mr := k.GetMultiRegion()
	if primary != "" && (mr.GetPrimaryRegion() != primary || mr.GetEpoch() != epoch) {
		// Versions merged, but this region follows a newer term.
		res.Error = fmt.Sprintf("superseded: region %s holds key %s under primary %s epoch %d, newer than %s epoch %d",
			r.regionName(), keyID, mr.GetPrimaryRegion(), mr.GetEpoch(), primary, epoch)
		return res
	}
	res.Applied = true
	return res
}

// promotion is the UpdatePrimaryRegion a planned switch needs at the new
// primary: the demoted primary ships back naming this region primary at an
// epoch above the key's.
func (r *Replicator) promotion(m *replpb.Merge) []*fsmpb.Command {
	here := r.regionName()
	k, ok := r.cfg.State.Key(m.GetKeyId())
	if !ok || m.GetPrimaryRegion() != here || k.GetMultiRegion().GetPrimaryRegion() == here ||
		m.GetEpoch() <= k.GetMultiRegion().GetEpoch() {
		return nil
	}
	return []*fsmpb.Command{{Op: &fsmpb.Command_UpdatePrimaryRegion{UpdatePrimaryRegion: &fsmpb.UpdatePrimaryRegion{
		KeyId: m.GetKeyId(), NewPrimary: here, Epoch: m.GetEpoch(),
	}}}}
}

// deletionReport records at this primary whether replica region from is
// pending deletion, when its entry says otherwise.
func (r *Replicator) deletionReport(from string, m *replpb.Merge) []*fsmpb.Command {
	k, ok := r.cfg.State.Key(m.GetKeyId())
	mr := k.GetMultiRegion()
	if !ok || mr.GetPrimaryRegion() != r.regionName() {
		return nil
	}
	i := slices.IndexFunc(mr.GetReplicas(), func(rep *fsmpb.Replica) bool { return rep.GetRegion() == from })
	if i < 0 {
		return nil
	}
	rep := mr.GetReplicas()[i]
	if m.GetDeleting() == (rep.GetState() == fsmpb.ReplicaState_REPLICA_STATE_DELETING) {
		return nil
	}
	return []*fsmpb.Command{{Op: &fsmpb.Command_AckReplica{AckReplica: &fsmpb.AckReplica{
		KeyId: m.GetKeyId(), Region: from, Epoch: mr.GetEpoch(), Seq: rep.GetAckedSeq(), Deleting: m.GetDeleting(),
	}}}}
}

func (r *Replicator) regionName() string { return r.cfg.State.Region().GetName() }

// importMaterial gives every shipped version a key token under this
// region's active domain key: the local copy of a version the region holds
// (no HSM work), else the shipped material, unwrapped with the batch's
// session key and wrapped under the domain key inside the HSM, all of the
// batch in one HSM call. A version shipped without material that the region
// lacks is left without a token; its change reports need_material.
func (r *Replicator) importMaterial(ctx context.Context, batch *replpb.Batch) error {
	dk := r.cfg.State.Region().GetActiveDomainKeyId()
	var (
		wrapped [][]byte
		targets []*fsmpb.KeyVersion
	)
	for _, c := range batch.GetChanges() {
		var keyID string
		var versions []*fsmpb.KeyVersion
		switch c := c.GetChange().(type) {
		case *replpb.Change_Import:
			keyID, versions = c.Import.GetKey().GetKeyId(), c.Import.GetKey().GetVersions()
		case *replpb.Change_Shared:
			keyID, versions = c.Shared.GetKeyId(), c.Shared.GetVersions()
		case *replpb.Change_Merge:
			keyID, versions = c.Merge.GetKeyId(), c.Merge.GetVersions()
		}
		local, _ := r.cfg.State.Key(keyID)
		for _, v := range versions {
			if held, ok := fsm.FindVersion(local, v.GetVersionId()); ok {
				v.KeyToken, v.DomainKeyId = held.GetKeyToken(), held.GetDomainKeyId()
				continue
			}
			if len(v.GetKeyToken()) > 0 {
				wrapped = append(wrapped, v.GetKeyToken())
				targets = append(targets, v)
			}
		}
	}
	if len(wrapped) == 0 {
		return nil
	}
	if len(batch.GetSessionKey()) == 0 {
		return fmt.Errorf("%w: the batch carries key material without a session key", ErrMalformed)
	}
	tokens, err := r.cfg.HSM.ImportKeyTokens(ctx, dk, batch.GetSessionKey(), wrapped)
	if err != nil {
		return fmt.Errorf("import key material: %w", err)
	}
	for i, v := range targets {
		v.KeyToken, v.DomainKeyId = tokens[i], dk
	}
	return nil
}

// lacksMaterial reports whether a version has no key token: shipped without
// material to a region that does not hold it.
func lacksMaterial(versions []*fsmpb.KeyVersion) bool {
	return slices.ContainsFunc(versions, func(v *fsmpb.KeyVersion) bool { return len(v.GetKeyToken()) == 0 })
}

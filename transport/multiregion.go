package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/fsm/fsmpb"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
	"github.com/trent-kms/trent/transport/policy"
)

// AWS's MultiRegionKeyType values.
const (
	mrkTypePrimary = "PRIMARY"
	mrkTypeReplica = "REPLICA"
)

// replicaStatusNames spell a replica's state as Trent reports it in
// MultiRegionConfiguration.ReplicaKeys[].Status.
var replicaStatusNames = map[fsmpb.ReplicaState]string{
	fsmpb.ReplicaState_REPLICA_STATE_CREATING: "CREATING",
	fsmpb.ReplicaState_REPLICA_STATE_ACTIVE:   "ACTIVE",
	fsmpb.ReplicaState_REPLICA_STATE_DELETING: "DELETING",
}

// newMRKID returns a fresh multi-region key id in AWS's form: the prefix
// and 32 lowercase hex digits. The id is the same in every region, so it is
// random rather than derived from anything regional.
func newMRKID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("multi-region key id: %w", err)
	}
	return fsm.MRKPrefix + hex.EncodeToString(b), nil
}

// validateRegionField checks a request field naming a region with the rule
// region names follow everywhere (certificates, kmsd -region), so a name
// no region can have is refused here rather than left for the replicator
// to fail on forever.
func validateRegionField(field, name string) error {
	if name == "" {
		return invalid(field, "is required")
	}
	if err := pki.ValidateRegion(name); err != nil {
		return invalid(field, "%.64q is not a region name: 1-64 characters of a-z 0-9 -", name)
	}
	return nil
}

func validateReplicateKey(req *kmspb.ReplicateKeyRequest) (map[string]string, error) {
	if err := requireKeyRef("KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	if err := validateRegionField("ReplicaRegion", req.GetReplicaRegion()); err != nil {
		return nil, err
	}
	if err := validateDescription(req.GetDescription()); err != nil {
		return nil, err
	}
	return validateKeyTags(req.GetTags())
}

// ReplicateKey lists a new replica of a multi-region primary key. The
// replica region's replicator creates the replica afterwards, as AWS does
// asynchronously: the answer describes the replica as it will be, in state
// Creating. The replica's policy, description and tags are its own; they
// travel with the replica list until the replica exists.
func (s *Server) ReplicateKey(ctx context.Context, req *kmspb.ReplicateKeyRequest) (*kmspb.ReplicateKeyResponse, error) {
	tags, err := validateReplicateKey(req)
	if err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionReplicateKey}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	id, mr, here, region := k.GetKeyId(), k.GetMultiRegion(), s.region(), req.GetReplicaRegion()
	switch {
	case mr == nil:
		return nil, fmt.Errorf("%w: key %s is not a multi-region key; only keys created with MultiRegion can be replicated", fsm.ErrInvalidState, id)
	case mr.GetPrimaryRegion() != here:
		return nil, fmt.Errorf("%w: key %s is a replica in region %s; call ReplicateKey in its primary region %s",
			fsm.ErrInvalidState, id, here, mr.GetPrimaryRegion())
	case region == here:
		return nil, invalid("ReplicaRegion", "%s is this region, where key %s is the primary", region, id)
	}
	keyPolicy := policy.DefaultPolicy(principal(ctx))
	if req.GetPolicy() != "" {
		// The lockout check asks whether the caller could change the
		// replica's policy, so it evaluates against the replica's name.
		if err := checkPolicyFor(ctx, req.GetPolicy(), keyARN(region, id), req.GetBypassPolicyLockoutSafetyCheck()); err != nil {
			return nil, err
		}
		keyPolicy = []byte(req.GetPolicy())
	}
	cmd := &fsmpb.Command{
		TimeUnixNano: s.now().UnixNano(),
		Op: &fsmpb.Command_AddReplica{AddReplica: &fsmpb.AddReplica{
			KeyId: id, Region: region, Policy: keyPolicy, Description: req.GetDescription(), Tags: tags,
		}},
	}
	res, err := s.propose(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return &kmspb.ReplicateKeyResponse{
		ReplicaKeyMetadata: s.replicaKeyMetadata(res.Key, region, req.GetDescription(), cmd.GetTimeUnixNano()),
		ReplicaPolicy:      string(keyPolicy),
		ReplicaTags:        req.GetTags(),
	}, nil
}

// replicaKeyMetadata describes the replica of k in region as it will be
// once its region creates it: the shared properties of k, its own
// description, state Creating, and the view of a replica.
func (s *Server) replicaKeyMetadata(k *fsmpb.Key, region, description string, created int64) *kmspb.KeyMetadata {
	md := s.keyMetadata(k)
	md.Arn = keyARN(region, k.GetKeyId())
	md.Region = region
	md.CreationDate = unixSeconds(created)
	md.Enabled = false
	md.Description = description
	md.KeyState = keyStateName(fsmpb.KeyState_KEY_STATE_CREATING)
	md.DeletionDate = 0
	md.PendingDeletionWindowInDays = 0
	cfg := md.GetMultiRegionConfiguration()
	cfg.MultiRegionKeyType = mrkTypeReplica
	cfg.SharedChange = 0
	// What only the primary knows, the replica's DescribeKey leaves out.
	for _, r := range cfg.GetReplicaKeys() {
		r.ReplicationLagMillis, r.AckedChange, r.LastError = nil, nil, ""
	}
	return md
}

// UpdatePrimaryRegion moves a multi-region key's primary to another region.
//
//   - Planned (Force unset), in the primary region: PrimaryRegion must name
//     an active replica (checked by the state machine). This region becomes a replica at once; the
//     replicator carries the change to the new primary.
//   - Forced, in the replica region being promoted, for when the primary
//     region is unreachable: this region becomes the primary under a higher
//     epoch, which fences the old primary; when it returns it demotes
//     itself and ships the versions it made meanwhile.
//
// Either way the new epoch is the key's plus one; if another change of the
// primary commits first, the state machine refuses this one as stale.
func (s *Server) UpdatePrimaryRegion(ctx context.Context, req *kmspb.UpdatePrimaryRegionRequest) (*kmspb.UpdatePrimaryRegionResponse, error) {
	if err := requireKeyRef("KeyId", req.GetKeyId()); err != nil {
		return nil, err
	}
	if err := validateRegionField("PrimaryRegion", req.GetPrimaryRegion()); err != nil {
		return nil, err
	}
	k, err := s.readKey(ctx, access{action: actionUpdatePrimaryRegion}, "KeyId", req.GetKeyId())
	if err != nil {
		return nil, err
	}
	id, mr, here, target := k.GetKeyId(), k.GetMultiRegion(), s.region(), req.GetPrimaryRegion()
	if mr == nil {
		return nil, fmt.Errorf("%w: key %s is not a multi-region key; UpdatePrimaryRegion needs one", fsm.ErrInvalidState, id)
	}
	primary := mr.GetPrimaryRegion()
	op := &fsmpb.UpdatePrimaryRegion{KeyId: id, NewPrimary: target, Epoch: mr.GetEpoch() + 1}
	switch {
	case target == primary:
		return nil, invalid("PrimaryRegion", "%s is already the primary region of key %s", target, id)
	case req.GetForce() && target != here:
		// Only the promoted region can take the primary role without the
		// old primary's consent; anywhere else the change could not apply.
		return nil, invalid("PrimaryRegion", "%s is not this region %s: a forced update promotes the region it is sent to; "+
			"send it to %s, or leave out Force for a planned switch in the primary region %s", target, here, target, primary)
	case req.GetForce():
		op.Forced = true
	case primary != here:
		return nil, fmt.Errorf("%w: key %s: this region %s is a replica; its primary region is %s. "+
			"Call UpdatePrimaryRegion in %s, or, if %s is unreachable, call it with Force in the region to promote",
			fsm.ErrInvalidState, id, here, primary, primary, primary)
	}
	// A planned switch needs an ACTIVE replica in the target region; the
	// state machine checks it against the state the write applies to.
	_, err = s.propose(ctx, &fsmpb.Command{Op: &fsmpb.Command_UpdatePrimaryRegion{UpdatePrimaryRegion: op}})
	if err != nil {
		return nil, err
	}
	return &kmspb.UpdatePrimaryRegionResponse{}, nil
}

// multiRegionConfiguration is DescribeKey's MultiRegionConfiguration for
// key id. Only the primary tracks each replica's progress, so lag, acked
// change and last error appear in the primary region alone.
func (s *Server) multiRegionConfiguration(id string, mr *fsmpb.MultiRegion) *kmspb.MultiRegionConfiguration {
	primary := mr.GetPrimaryRegion() == s.region()
	cfg := &kmspb.MultiRegionConfiguration{
		MultiRegionKeyType: mrkTypeReplica,
		PrimaryKey:         &kmspb.MultiRegionKey{Arn: keyARN(mr.GetPrimaryRegion(), id), Region: mr.GetPrimaryRegion()},
		ReplicaKeys:        make([]*kmspb.MultiRegionKey, 0, len(mr.GetReplicas())),
		Epoch:              mr.GetEpoch(),
	}
	if primary {
		cfg.MultiRegionKeyType = mrkTypePrimary
		cfg.SharedChange = mr.GetSharedSeq()
	} else {
		cfg.AppliedChange = mr.GetAppliedSeq()
		cfg.AppliedTime = unixSeconds(mr.GetAppliedTimeUnixNano())
	}
	now := s.now().UnixNano()
	for _, r := range mr.GetReplicas() {
		rk := &kmspb.MultiRegionKey{
			Arn:    keyARN(r.GetRegion(), id),
			Region: r.GetRegion(),
			Status: replicaStatusNames[r.GetState()],
		}
		if primary {
			lag := replicaLagMillis(r, now)
			acked := r.GetAckedSeq()
			rk.ReplicationLagMillis, rk.AckedChange, rk.LastError = &lag, &acked, r.GetLastError()
		}
		cfg.ReplicaKeys = append(cfg.ReplicaKeys, rk)
	}
	return cfg
}

// replicaLagMillis is how long replica r has been behind its primary's
// latest change at now (command time), 0 when it has it.
func replicaLagMillis(r *fsmpb.Replica, now int64) int64 {
	since := r.GetBehindSinceUnixNano()
	if since == 0 {
		return 0
	}
	return max(0, (now-since)/int64(time.Millisecond))
}

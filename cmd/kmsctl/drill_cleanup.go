package main

import (
	"context"
	"errors"

	"github.com/trent-kms/trent/transport/kmspb"
)

// drillCleanupDays is the waiting period of the drill's keys with
// --cleanup: the shortest ScheduleKeyDeletion allows, so that a deployment
// drilled often does not gather keys, while a week is left to look at a
// drill's keys, or to cancel their deletion.
const drillCleanupDays = 7

// cleanup schedules the deletion of every key the drill made, in both
// regions. Each replica goes first; a primary whose replicas are not yet
// deleted then waits in PendingReplicaDeletion, and its own waiting period
// starts when the last one is gone, as in AWS KMS. A key
// already pending deletion (a retried request that had gone through) is
// left as it is.
func (d *drill) cleanup(ctx context.Context, s *drillStep) error {
	done := 0
	for _, k := range d.keys {
		failed := len(s.Errors)
		var replicas, primaries []string
		for _, region := range []string{d.cfg.primary, d.cfg.survivor} {
			md, err := d.describe(ctx, region, k.id)
			if err != nil {
				if !errors.Is(err, errNoSuchKey) {
					s.errorf("key %s: %v", k.id, err)
				}
				continue // a failed setup made no replica here
			}
			switch {
			case pendingDeletion(md):
			case md.GetMultiRegionConfiguration().GetMultiRegionKeyType() == "REPLICA":
				replicas = append(replicas, region)
			default:
				primaries = append(primaries, region)
			}
		}
		for _, region := range append(replicas, primaries...) {
			if err := d.scheduleDeletion(ctx, region, k.id); err != nil {
				s.errorf("key %s: %v", k.id, err)
			}
		}
		if len(s.Errors) == failed {
			done++
		}
	}
	if len(d.keys) == 0 {
		s.notef("the drill made no keys")
		return nil
	}
	s.notef("%d of %s scheduled for deletion in both regions, replicas first: each replica in %d days, each primary %d days after its last replica",
		done, plural(len(d.keys), "key"), drillCleanupDays, drillCleanupDays)
	return nil
}

func pendingDeletion(md *kmspb.KeyMetadata) bool {
	return md.GetKeyState() == "PendingDeletion" || md.GetKeyState() == "PendingReplicaDeletion"
}

// scheduleDeletion schedules id's deletion in region, retried while the
// region elects a leader. A retry of a request that went through finds
// the key pending deletion, which is what was asked.
func (d *drill) scheduleDeletion(ctx context.Context, region, id string) error {
	err := d.retry(ctx, func(ctx context.Context) error {
		ctx, cancel := call(ctx)
		defer cancel()
		_, err := d.kms[region].ScheduleKeyDeletion(ctx, &kmspb.ScheduleKeyDeletionRequest{KeyId: id, PendingWindowInDays: drillCleanupDays})
		return err
	})
	if err == nil {
		return nil
	}
	if md, derr := d.describe(ctx, region, id); derr == nil && pendingDeletion(md) {
		return nil
	}
	return apiError("ScheduleKeyDeletion", region, err)
}

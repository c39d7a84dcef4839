package fsm

import (
	"sort"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// MaxManagementEvents is how many management events the state keeps: the
// most recent ones, the oldest dropped first. The replicated state only
// answers "what changed lately" on every node; the complete record is each
// node's audit log, and a longer history here would grow every snapshot.
const MaxManagementEvents = 10_000

// recordEvent appends the management event of a key, alias, tag, policy or
// grant command, accepted or rejected; region and node commands are the
// cluster's own bookkeeping and record nothing. It runs on every apply, so
// it fills the event in place in the log and allocates nothing.
func (s *state) recordEvent(index uint64, cmd *fsmpb.Command, res *Result) {
	names, ok := eventNamesOf(cmd, res)
	if !ok {
		return
	}
	ev := s.events.add()
	ev.Index = index
	ev.TimeUnixNano = cmd.GetTimeUnixNano()
	ev.Principal = cmd.GetPrincipal()
	ev.Operation = names.operation
	ev.KeyId = names.keyID
	ev.AliasName = names.aliasName
	ev.GrantId = names.grantID
	if res.Err != nil {
		ev.ErrorKind = RejectKindName(res.Err)
	}
	if s.events.len() > MaxManagementEvents {
		s.events.popFront()
	}
}

// eventNames is what an event says about its command.
type eventNames struct {
	operation, keyID, aliasName, grantID string
}

// eventNamesOf returns the operation of cmd (named as in AWS KMS and
// CloudTrail) and the names it concerns; false for commands that record no
// event.
func eventNamesOf(cmd *fsmpb.Command, res *Result) (eventNames, bool) {
	switch op := cmd.Op.(type) {
	case *fsmpb.Command_CreateKey:
		return eventNames{operation: "CreateKey", keyID: op.CreateKey.GetKey().GetKeyId()}, true
	case *fsmpb.Command_UpdateKeyDescription:
		return eventNames{operation: "UpdateKeyDescription", keyID: op.UpdateKeyDescription.GetKeyId()}, true
	case *fsmpb.Command_SetKeyEnabled:
		operation := "DisableKey"
		if op.SetKeyEnabled.GetEnabled() {
			operation = "EnableKey"
		}
		return eventNames{operation: operation, keyID: op.SetKeyEnabled.GetKeyId()}, true
	case *fsmpb.Command_ScheduleKeyDeletion:
		return eventNames{operation: "ScheduleKeyDeletion", keyID: op.ScheduleKeyDeletion.GetKeyId()}, true
	case *fsmpb.Command_CancelKeyDeletion:
		return eventNames{operation: "CancelKeyDeletion", keyID: op.CancelKeyDeletion.GetKeyId()}, true
	case *fsmpb.Command_DeleteKey:
		return eventNames{operation: "DeleteKey", keyID: op.DeleteKey.GetKeyId()}, true
	case *fsmpb.Command_SetKeyRotation:
		operation := "DisableKeyRotation"
		if op.SetKeyRotation.GetEnabled() {
			operation = "EnableKeyRotation"
		}
		return eventNames{operation: operation, keyID: op.SetKeyRotation.GetKeyId()}, true
	case *fsmpb.Command_RotateKey:
		// CloudTrail's names: RotateKey is the automatic rotation.
		operation := "RotateKeyOnDemand"
		if op.RotateKey.GetVersion().GetRotationType() == RotationAutomatic {
			operation = "RotateKey"
		}
		return eventNames{operation: operation, keyID: op.RotateKey.GetKeyId()}, true
	case *fsmpb.Command_CreateAlias:
		return eventNames{operation: "CreateAlias",
			aliasName: op.CreateAlias.GetAliasName(), keyID: op.CreateAlias.GetTargetKeyId()}, true
	case *fsmpb.Command_UpdateAlias:
		return eventNames{operation: "UpdateAlias",
			aliasName: op.UpdateAlias.GetAliasName(), keyID: op.UpdateAlias.GetTargetKeyId()}, true
	case *fsmpb.Command_DeleteAlias:
		// The command names only the alias; the key it pointed at is known
		// once applied.
		return eventNames{operation: "DeleteAlias",
			aliasName: op.DeleteAlias.GetAliasName(), keyID: res.Alias.GetTargetKeyId()}, true
	case *fsmpb.Command_TagResource:
		return eventNames{operation: "TagResource", keyID: op.TagResource.GetKeyId()}, true
	case *fsmpb.Command_UntagResource:
		return eventNames{operation: "UntagResource", keyID: op.UntagResource.GetKeyId()}, true
	case *fsmpb.Command_PutKeyPolicy:
		return eventNames{operation: "PutKeyPolicy", keyID: op.PutKeyPolicy.GetKeyId()}, true
	case *fsmpb.Command_CreateGrant:
		// A repeated named CreateGrant returns an existing grant: record
		// the id the caller got back.
		grantID := op.CreateGrant.GetGrant().GetGrantId()
		if res.Grant != nil {
			grantID = res.Grant.GetGrantId()
		}
		return eventNames{operation: "CreateGrant",
			keyID: op.CreateGrant.GetGrant().GetKeyId(), grantID: grantID}, true
	case *fsmpb.Command_RemoveGrant:
		return eventNames{operation: removeGrantOperation(op.RemoveGrant),
			keyID: op.RemoveGrant.GetKeyId(), grantID: op.RemoveGrant.GetGrantId()}, true
	case *fsmpb.Command_AddReplica:
		return eventNames{operation: "ReplicateKey", keyID: op.AddReplica.GetKeyId()}, true
	case *fsmpb.Command_ImportReplicaKey:
		// The replica region's side of the same ReplicateKey.
		return eventNames{operation: "ReplicateKey", keyID: op.ImportReplicaKey.GetKey().GetKeyId()}, true
	case *fsmpb.Command_UpdatePrimaryRegion:
		return eventNames{operation: "UpdatePrimaryRegion", keyID: op.UpdatePrimaryRegion.GetKeyId()}, true
	}
	// Shared changes, acks, merges and replica removals are the
	// replicator's bookkeeping: as frequent as changes times replicas, they
	// would push the operators' own commands out of the bounded log.
	return eventNames{}, false
}

// ManagementEvents returns up to limit (all if limit <= 0) of the kept
// management events with an index greater than afterIndex, oldest first. The
// events are shared: callers must not modify them. A caller that follows
// the log passes the last index it has seen; events dropped before it asked
// (more than MaxManagementEvents behind) are gone.
func (f *FSM) ManagementEvents(afterIndex uint64, limit int) []*fsmpb.ManagementEvent {
	f.mu.RLock()
	defer f.mu.RUnlock()
	chunks := f.st.events.chunks
	ci := sort.Search(len(chunks), func(i int) bool { return chunks[i][len(chunks[i])-1].GetIndex() > afterIndex })
	var events []*fsmpb.ManagementEvent
	for ; ci < len(chunks); ci++ {
		c := chunks[ci]
		i := sort.Search(len(c), func(i int) bool { return c[i].GetIndex() > afterIndex })
		for j := range c[i:] {
			if limit > 0 && len(events) == limit {
				return events
			}
			events = append(events, &c[i+j])
		}
	}
	return events
}

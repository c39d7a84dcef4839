package fsm

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Config holds what New needs.
type Config struct {
	// Logger receives restores and fatal decode failures; nil discards.
	Logger *slog.Logger
}

// FSM is one region's replicated state. Apply, Snapshot and Restore are called
// by the Raft adapter on one goroutine; every other method is safe for
// concurrent use and returns shared, immutable records that callers must not
// modify.
type FSM struct {
	logger *slog.Logger

	mu sync.RWMutex
	st *state // replaced wholesale by Restore

	// applied is written under mu (so a reader that observes index N also
	// observes the state after N) and read without it.
	applied atomic.Uint64
	waiters waiters
}

// state is everything a snapshot holds besides the applied index. Records in
// it are immutable once stored: a change stores a modified clone.
type state struct {
	region     *fsmpb.Region      // nil before InitRegion
	domainKeys []*fsmpb.DomainKey // in the order they were added
	nodes      table[*fsmpb.Node]
	keys       table[*fsmpb.Key]
	aliases    table[*fsmpb.Alias]

	// Grants, indexed three ways: by grant id (Grant, snapshots), by key id
	// and grant id (ListGrants pages), and per key in creation order
	// (Grants, the data plane's read). A key's slice is never modified where
	// a reader can see it: CreateGrant appends past its length or replaces
	// it, RemoveGrant replaces it.
	grants      table[*fsmpb.Grant]
	grantsByKey table[*fsmpb.Grant]
	keyGrants   map[string][]*fsmpb.Grant

	// Grants retired or revoked within GrantTokenMaxAge, in the order they
	// were removed (the order pruning walks), and their ids for lookups.
	removedGrants   chunkLog[fsmpb.RemovedGrant]
	removedGrantIDs map[string]struct{}

	// The last MaxManagementEvents management events, oldest first.
	events chunkLog[fsmpb.ManagementEvent]

	// Multi-region keys with work for this region's replicator (see
	// ShipTargets), kept by putKey so the replicator reads no full scan.
	toShip map[string]*fsmpb.Key

	// The time of the command being applied (the proposer's clock, carried
	// in the command), for bookkeeping that putKey does on every key write.
	now int64
}

func newState() *state {
	return &state{
		nodes:           newTable[*fsmpb.Node](),
		keys:            newTable[*fsmpb.Key](),
		aliases:         newTable[*fsmpb.Alias](),
		grants:          newTable[*fsmpb.Grant](),
		grantsByKey:     newTable[*fsmpb.Grant](),
		keyGrants:       make(map[string][]*fsmpb.Grant),
		removedGrantIDs: make(map[string]struct{}),
		toShip:          make(map[string]*fsmpb.Key),
	}
}

// Result is what Apply returns for every command.
type Result struct {
	// Key is the key after a key command (for DeleteKey, the key as it was
	// when removed); nil on rejection and for other commands.
	Key *fsmpb.Key
	// Alias is the alias after an alias command (for DeleteAlias, the
	// removed alias); nil otherwise.
	Alias *fsmpb.Alias
	// Grant is the grant CreateGrant stored, or the existing grant it
	// returned instead (its id then differs from the proposed one), or the
	// grant RemoveGrant removed; nil otherwise.
	Grant *fsmpb.Grant
	// Err is nil or a *RejectError; a rejected command changed nothing but
	// the management events.
	Err error
}

// New returns an empty state machine at applied index 0.
func New(cfg Config) *FSM {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &FSM{logger: logger, st: newState()}
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// Encode marshals a command for proposing. The encoding is deterministic
// (sorted map entries) so identical commands give identical log entries.
func Encode(cmd *fsmpb.Command) ([]byte, error) {
	return deterministic.Marshal(cmd)
}

// Apply decodes one Raft log entry and applies it at index; it always returns
// a *Result. An entry that does not decode, or carries an operation this
// version does not know, panics: skipping it would let this node's state
// diverge from the nodes that understood it.
func (f *FSM) Apply(index uint64, data []byte) any {
	cmd := new(fsmpb.Command)
	if err := proto.Unmarshal(data, cmd); err != nil {
		f.logger.Error("undecodable raft log entry", "index", index, "len", len(data), "err", err)
		panic(fmt.Sprintf("fsm: undecodable log entry at index %d: %v", index, err))
	}
	if cmd.Op == nil && len(cmd.ProtoReflect().GetUnknown()) > 0 {
		f.logger.Error("raft log entry with an unknown operation", "index", index)
		panic(fmt.Sprintf("fsm: log entry at index %d carries an operation this version does not know", index))
	}

	f.mu.Lock()
	res := f.st.apply(cmd)
	f.st.recordEvent(index, cmd, res)
	f.applied.Store(index)
	f.mu.Unlock()

	f.waiters.release(index)
	return res
}

func (s *state) apply(cmd *fsmpb.Command) *Result {
	now := cmd.GetTimeUnixNano()
	if now <= 0 {
		return reject(ErrInvalidArgument, "command has no time (time_unix_nano %d)", now)
	}
	s.now = now
	switch op := cmd.Op.(type) {
	case *fsmpb.Command_CreateKey:
		return s.applyCreateKey(now, cmd.GetPrincipal(), op.CreateKey)
	case *fsmpb.Command_UpdateKeyDescription:
		return s.applyUpdateKeyDescription(op.UpdateKeyDescription)
	case *fsmpb.Command_SetKeyEnabled:
		return s.applySetKeyEnabled(op.SetKeyEnabled)
	case *fsmpb.Command_ScheduleKeyDeletion:
		return s.applyScheduleKeyDeletion(now, op.ScheduleKeyDeletion)
	case *fsmpb.Command_CancelKeyDeletion:
		return s.applyCancelKeyDeletion(op.CancelKeyDeletion)
	case *fsmpb.Command_DeleteKey:
		return s.applyDeleteKey(now, op.DeleteKey)
	case *fsmpb.Command_SetKeyRotation:
		return s.applySetKeyRotation(now, op.SetKeyRotation)
	case *fsmpb.Command_RotateKey:
		return s.applyRotateKey(now, op.RotateKey)
	case *fsmpb.Command_CreateAlias:
		return s.applyCreateAlias(now, op.CreateAlias)
	case *fsmpb.Command_UpdateAlias:
		return s.applyUpdateAlias(now, op.UpdateAlias)
	case *fsmpb.Command_DeleteAlias:
		return s.applyDeleteAlias(op.DeleteAlias)
	case *fsmpb.Command_TagResource:
		return s.applyTagResource(op.TagResource)
	case *fsmpb.Command_UntagResource:
		return s.applyUntagResource(op.UntagResource)
	case *fsmpb.Command_PutKeyPolicy:
		return s.applyPutKeyPolicy(op.PutKeyPolicy)
	case *fsmpb.Command_CreateGrant:
		return s.applyCreateGrant(now, op.CreateGrant)
	case *fsmpb.Command_RemoveGrant:
		return s.applyRemoveGrant(now, op.RemoveGrant)
	case *fsmpb.Command_AddReplica:
		return s.applyAddReplica(op.AddReplica)
	case *fsmpb.Command_ImportReplicaKey:
		return s.applyImportReplicaKey(now, cmd.GetPrincipal(), op.ImportReplicaKey)
	case *fsmpb.Command_ApplySharedChange:
		return s.applySharedChange(now, op.ApplySharedChange)
	case *fsmpb.Command_AckReplica:
		return s.applyAckReplica(now, op.AckReplica)
	case *fsmpb.Command_UpdatePrimaryRegion:
		return s.applyUpdatePrimaryRegion(now, op.UpdatePrimaryRegion)
	case *fsmpb.Command_RemoveReplica:
		return s.applyRemoveReplica(now, op.RemoveReplica)
	case *fsmpb.Command_MergeKeyVersions:
		return s.applyMergeKeyVersions(op.MergeKeyVersions)
	case *fsmpb.Command_InitRegion:
		return s.applyInitRegion(now, op.InitRegion)
	case *fsmpb.Command_AddDomainKey:
		return s.applyAddDomainKey(now, op.AddDomainKey)
	case *fsmpb.Command_RegisterNode:
		return s.applyRegisterNode(op.RegisterNode)
	case *fsmpb.Command_DeregisterNode:
		return s.applyDeregisterNode(op.DeregisterNode)
	case *fsmpb.Command_SetRegionSigningKey:
		return s.applySetRegionSigningKey(op.SetRegionSigningKey)
	case *fsmpb.Command_PinPeerRegion:
		return s.applyPinPeerRegion(op.PinPeerRegion)
	default:
		return reject(ErrInvalidArgument, "command carries no operation")
	}
}

// AppliedIndex is the index of the last applied log entry (or of the restored
// snapshot).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Key returns the key with that id. It is the data plane's hot path: one read
// lock and a map lookup, no copying.
func (f *FSM) Key(id string) (*fsmpb.Key, bool) {
	f.mu.RLock()
	k, ok := f.st.keys.get(id)
	f.mu.RUnlock()
	return k, ok
}

// Alias returns the alias with that full name ("alias/...").
func (f *FSM) Alias(name string) (*fsmpb.Alias, bool) {
	f.mu.RLock()
	a, ok := f.st.aliases.get(name)
	f.mu.RUnlock()
	return a, ok
}

// ListKeys returns up to limit keys (all if limit <= 0) with ids greater than
// after, sorted by id; truncated reports that more follow.
func (f *FSM) ListKeys(after string, limit int) (keys []*fsmpb.Key, truncated bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, k := range f.st.keys.after(after) {
		if limit > 0 && len(keys) == limit {
			return keys, true
		}
		keys = append(keys, k)
	}
	return keys, false
}

// ListAliases returns up to limit aliases (all if limit <= 0) with names
// greater than after, sorted by name, only those targeting keyID unless it is
// ""; truncated reports that more matching aliases follow.
func (f *FSM) ListAliases(keyID, after string, limit int) (aliases []*fsmpb.Alias, truncated bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, a := range f.st.aliases.after(after) {
		if keyID != "" && a.GetTargetKeyId() != keyID {
			continue
		}
		if limit > 0 && len(aliases) == limit {
			return aliases, true
		}
		aliases = append(aliases, a)
	}
	return aliases, false
}

// Region returns the region's configuration, nil before InitRegion.
func (f *FSM) Region() *fsmpb.Region {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.region
}

// DomainKeys returns every domain key of the region, oldest first.
func (f *FSM) DomainKeys() []*fsmpb.DomainKey {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.st.domainKeys)
}

// Nodes returns the registered nodes sorted by id.
func (f *FSM) Nodes() []*fsmpb.Node {
	f.mu.RLock()
	defer f.mu.RUnlock()
	nodes := make([]*fsmpb.Node, 0, f.st.nodes.len())
	for _, n := range f.st.nodes.all() {
		nodes = append(nodes, n)
	}
	return nodes
}

// Node returns the registered node with that id.
func (f *FSM) Node(id string) (*fsmpb.Node, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.nodes.get(id)
}

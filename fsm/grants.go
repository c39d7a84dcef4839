package fsm

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// GrantTokenMaxAge is how long after issue a grant token is accepted. Nodes
// refuse older tokens, so a grant removal older than this need not be
// remembered: no token that could still name the grant is accepted anyway.
const GrantTokenMaxAge = 10 * time.Minute

// maxGrantsPerKey is AWS KMS's quota of grants per key. A variable only so
// that tests can reach it without creating 50000 grants.
var maxGrantsPerKey = 50_000

// grantKeySep joins a key id and a grant id in grantsByKey: it sorts before
// every other byte, so one key's grants are contiguous and in grant id order.
const grantKeySep = "\x00"

func grantsByKeyID(keyID, grantID string) string { return keyID + grantKeySep + grantID }

// compareCreation orders one key's grants: by creation time, then grant id.
// Command times need not increase from one entry to the next (leaders'
// clocks differ), so apply order alone would not be reproducible from a
// snapshot; this order is.
func compareCreation(a, b *fsmpb.Grant) int {
	if c := cmp.Compare(a.GetCreationTimeUnixNano(), b.GetCreationTimeUnixNano()); c != 0 {
		return c
	}
	return cmp.Compare(a.GetGrantId(), b.GetGrantId())
}

func (s *state) applyCreateGrant(now int64, op *fsmpb.CreateGrant) *Result {
	g := op.GetGrant()
	k, r := s.keyIn(g.GetKeyId(), "CreateGrant", enabled, disabled)
	if r != nil {
		return r
	}
	keyID := k.GetKeyId()
	if r := checkGrant(keyID, g); r != nil {
		return r
	}
	region, r := s.regionWithGrantTokenKey(keyID, op)
	if r != nil {
		return r
	}
	if existing := s.equivalentGrant(g); existing != nil {
		// As AWS: a retried CreateGrant with a name gets the grant the first
		// attempt created, not a second one.
		s.setRegion(region)
		return &Result{Grant: existing}
	}
	id := g.GetGrantId()
	if _, exists := s.grants.get(id); exists {
		return reject(ErrAlreadyExists, "grant %s already exists", id)
	}
	if _, removed := s.removedGrantIDs[id]; removed {
		// Its tokens may still be presented and must stay refused.
		return reject(ErrAlreadyExists, "grant %s was removed recently; its id cannot be reused", id)
	}
	if n := len(s.keyGrants[keyID]); n >= maxGrantsPerKey {
		return reject(ErrLimitExceeded, "key %s has %d grants; the limit is %d", keyID, n, maxGrantsPerKey)
	}

	g.CreationTimeUnixNano = now
	s.grants.put(id, g)
	s.grantsByKey.put(grantsByKeyID(keyID, id), g)
	s.keyGrants[keyID] = insertGrant(s.keyGrants[keyID], g)
	s.setRegion(region)
	return &Result{Grant: g}
}

func checkGrant(keyID string, g *fsmpb.Grant) *Result {
	switch {
	case g.GetGrantId() == "":
		return reject(ErrInvalidArgument, "key %s: CreateGrant needs a GrantId", keyID)
	case g.GetGranteePrincipal() == "":
		return reject(ErrInvalidArgument, "key %s: CreateGrant needs a GranteePrincipal", keyID)
	case len(g.GetOperations()) == 0:
		return reject(ErrInvalidArgument, "key %s: CreateGrant needs at least one of Operations", keyID)
	case len(g.GetEncryptionContextEquals()) > 0 && len(g.GetEncryptionContextSubset()) > 0:
		return reject(ErrInvalidArgument,
			"key %s: grant Constraints have both EncryptionContextEquals and EncryptionContextSubset; only one is allowed", keyID)
	}
	for i, operation := range g.GetOperations() {
		if operation == "" {
			return reject(ErrInvalidArgument, "key %s: Operations[%d] of the grant is empty", keyID, i)
		}
	}
	return nil
}

// regionWithGrantTokenKey returns the region with the command's grant token
// key if the region has none yet, else nil. The first one applied wins: two
// proposers that both saw none each sent their own, and every node must keep
// the same.
func (s *state) regionWithGrantTokenKey(keyID string, op *fsmpb.CreateGrant) (*fsmpb.Region, *Result) {
	if len(op.GetGrantTokenKey()) == 0 || s.region == nil || len(s.region.GetGrantTokenKey()) > 0 {
		return nil, nil
	}
	dkID := op.GetGrantTokenDomainKeyId()
	if !s.hasDomainKey(dkID) {
		return nil, reject(ErrInvalidArgument, "key %s: CreateGrant's grant token key is wrapped under unknown domain key %q",
			keyID, dkID)
	}
	region := proto.Clone(s.region).(*fsmpb.Region)
	region.GrantTokenKey = op.GetGrantTokenKey()
	region.GrantTokenDomainKeyId = dkID
	return region, nil
}

func (s *state) setRegion(region *fsmpb.Region) {
	if region != nil {
		s.region = region
	}
}

// equivalentGrant returns the grant on g's key with g's non-empty name and
// the same parameters, nil if none. It scans the key's grants (at most
// maxGrantsPerKey, names compared first), which only named CreateGrants pay.
func (s *state) equivalentGrant(g *fsmpb.Grant) *fsmpb.Grant {
	name := g.GetName()
	if name == "" {
		return nil
	}
	var ops []string
	for _, e := range s.keyGrants[g.GetKeyId()] {
		if e.GetName() != name ||
			e.GetGranteePrincipal() != g.GetGranteePrincipal() ||
			e.GetRetiringPrincipal() != g.GetRetiringPrincipal() ||
			!maps.Equal(e.GetEncryptionContextEquals(), g.GetEncryptionContextEquals()) ||
			!maps.Equal(e.GetEncryptionContextSubset(), g.GetEncryptionContextSubset()) {
			continue
		}
		if ops == nil {
			ops = operationSet(g.GetOperations())
		}
		if slices.Equal(operationSet(e.GetOperations()), ops) {
			return e
		}
	}
	return nil
}

// operationSet returns the operations sorted and without repeats: AWS treats
// a grant's operations as a set.
func operationSet(operations []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(operations)))
}

// insertGrant returns list with g in creation order. Appending (the usual
// case) writes past the length any reader holds, so it does not copy; an
// insertion elsewhere builds a new slice.
func insertGrant(list []*fsmpb.Grant, g *fsmpb.Grant) []*fsmpb.Grant {
	i, _ := slices.BinarySearchFunc(list, g, compareCreation)
	if i == len(list) {
		return append(list, g)
	}
	out := make([]*fsmpb.Grant, 0, len(list)+1)
	out = append(out, list[:i]...)
	out = append(out, g)
	return append(out, list[i:]...)
}

func (s *state) applyRemoveGrant(now int64, op *fsmpb.RemoveGrant) *Result {
	action := removeGrantOperation(op)
	grantID, keyID := op.GetGrantId(), op.GetKeyId()
	if grantID == "" {
		return reject(ErrInvalidArgument, "%s needs a GrantId", action)
	}
	if keyID == "" {
		return reject(ErrInvalidArgument, "grant %s: %s needs a key id", grantID, action)
	}
	g, ok := s.grants.get(grantID)
	if !ok || g.GetKeyId() != keyID {
		return reject(ErrNotFound, "grant %s of key %s does not exist", grantID, keyID)
	}
	s.removeGrant(g)
	rg := s.removedGrants.add()
	rg.GrantId, rg.KeyId, rg.RemovalTimeUnixNano = grantID, keyID, now
	s.removedGrantIDs[grantID] = struct{}{}
	s.pruneRemovedGrants(now)
	return &Result{Grant: g}
}

func removeGrantOperation(op *fsmpb.RemoveGrant) string {
	if op.GetRevoke() {
		return "RevokeGrant"
	}
	return "RetireGrant"
}

// removeGrant drops g from the three grant indexes.
func (s *state) removeGrant(g *fsmpb.Grant) {
	keyID := g.GetKeyId()
	s.grants.remove(g.GetGrantId())
	s.grantsByKey.remove(grantsByKeyID(keyID, g.GetGrantId()))
	list := s.keyGrants[keyID]
	i, found := slices.BinarySearchFunc(list, g, compareCreation)
	switch {
	case !found:
		return
	case len(list) == 1:
		delete(s.keyGrants, keyID)
	default:
		// A new slice: readers may hold the old one.
		out := make([]*fsmpb.Grant, 0, len(list)-1)
		out = append(out, list[:i]...)
		s.keyGrants[keyID] = append(out, list[i+1:]...)
	}
}

// removeKeyGrants drops every grant of a key that is being deleted.
func (s *state) removeKeyGrants(keyID string) {
	for _, g := range s.keyGrants[keyID] {
		s.grants.remove(g.GetGrantId())
		s.grantsByKey.remove(grantsByKeyID(keyID, g.GetGrantId()))
	}
	delete(s.keyGrants, keyID)
}

// pruneRemovedGrants forgets removals older than GrantTokenMaxAge before now,
// the command's time, so every node forgets the same ones. It walks from the
// oldest removal applied and stops at the first one still needed; if a
// leader's clock lagged, a later entry may be older than one before it and
// is forgotten a little late, never early.
func (s *state) pruneRemovedGrants(now int64) {
	cutoff := now - int64(GrantTokenMaxAge)
	for s.removedGrants.len() > 0 && s.removedGrants.front().GetRemovalTimeUnixNano() < cutoff {
		delete(s.removedGrantIDs, s.removedGrants.front().GetGrantId())
		s.removedGrants.popFront()
	}
}

// Grants returns every grant of the key in creation order (creation time,
// then grant id), nil if it has none. Requests the key policy does not allow
// call it, so it is a map lookup under the read lock with no allocation or
// copying: the slice and the grants are shared, and callers must not modify
// them.
func (f *FSM) Grants(keyID string) []*fsmpb.Grant {
	f.mu.RLock()
	list := f.st.keyGrants[keyID]
	f.mu.RUnlock()
	// Capacity cut to the length: an append by the caller must not write
	// into the array the next CreateGrant appends to.
	return list[:len(list):len(list)]
}

// Grant returns the grant with that id.
func (f *FSM) Grant(grantID string) (*fsmpb.Grant, bool) {
	f.mu.RLock()
	g, ok := f.st.grants.get(grantID)
	f.mu.RUnlock()
	return g, ok
}

// GrantRemoved reports whether the grant was retired or revoked and is still
// remembered: at least until a RemoveGrant at least GrantTokenMaxAge after
// the removal (pruning runs only then). A grant token naming it must be
// refused, whatever else the token says.
func (f *FSM) GrantRemoved(grantID string) bool {
	f.mu.RLock()
	_, ok := f.st.removedGrantIDs[grantID]
	f.mu.RUnlock()
	return ok
}

// ListGrants returns up to limit grants (all if limit <= 0) of the key with
// grant ids greater than after, sorted by grant id (not creation order, so
// that a marker stays valid when its grant is removed between pages);
// truncated reports that more follow. The marker for the next page is the
// last returned grant id.
func (f *FSM) ListGrants(keyID, after string, limit int) (grants []*fsmpb.Grant, truncated bool) {
	prefix := keyID + grantKeySep
	f.mu.RLock()
	defer f.mu.RUnlock()
	for id, g := range f.st.grantsByKey.after(prefix + after) {
		if !strings.HasPrefix(id, prefix) {
			break
		}
		if g.GetKeyId() != keyID {
			continue // a key id that itself contains the separator
		}
		if limit > 0 && len(grants) == limit {
			return grants, true
		}
		grants = append(grants, g)
	}
	return grants, false
}

// ListRetirableGrants returns up to limit grants (all if limit <= 0) whose
// retiring principal is principal, with grant ids greater than after, sorted
// by grant id; truncated reports that more follow. It scans every grant of
// the region from after on: it serves an occasional administrative call, and
// an index by retiring principal would cost every CreateGrant. An empty
// principal matches nothing.
func (f *FSM) ListRetirableGrants(principal, after string, limit int) (grants []*fsmpb.Grant, truncated bool) {
	if principal == "" {
		return nil, false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, g := range f.st.grants.after(after) {
		if g.GetRetiringPrincipal() != principal {
			continue
		}
		if limit > 0 && len(grants) == limit {
			return grants, true
		}
		grants = append(grants, g)
	}
	return grants, false
}

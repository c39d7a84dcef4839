package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// Snapshot stream layout (all integers big-endian unless uvarint):
//
//	"TRENTFSM" | format version uint32 | applied index uint64
//	{ uvarint length > 0 | SnapshotRecord }...
//	uvarint 0 | CRC-32C (Castagnoli) of every byte before it, uint32
//
// The end marker and checksum let Restore tell a complete stream from one cut
// at a record boundary or damaged in place.
//
// Version 2 added the grant, removed grant and management event records; the
// framing is unchanged. The version says which record types a stream may
// hold, so a build that knows only version 1 reports a newer snapshot as
// such instead of as a corrupt one. Restore reads all of them.
//
// Version 3 added multi-region keys: their state lives in new fields of the
// key record, which an older build would silently drop as unknown fields.
// The version makes it refuse the stream instead.
const (
	snapshotMagic         = "TRENTFSM"
	snapshotFormatVersion = 3
	minSnapshotVersion    = 1
	snapshotHeaderLen     = len(snapshotMagic) + 4 + 8
	snapshotTrailerLen    = 1 + 4
	// Far above any real record (a key with thousands of versions), low
	// enough that a damaged length cannot make Restore allocate gigabytes.
	maxSnapshotRecordLen = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorruptSnapshot is wrapped by every Restore error about the stream's
// content (as opposed to an error reading it).
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

// Snapshot is a point-in-time view of the state. Taking it copies one pointer
// per block of each table's ordered index and per chunk of the removed grants
// and the events; records, blocks and the chunks' covered elements are
// immutable, so later applies cannot change what it writes.
type Snapshot struct {
	index      uint64
	region     *fsmpb.Region
	domainKeys []*fsmpb.DomainKey
	nodes      [][]entry[*fsmpb.Node]
	keys       [][]entry[*fsmpb.Key]
	aliases    [][]entry[*fsmpb.Alias]
	grants     [][]entry[*fsmpb.Grant]
	removed    [][]fsmpb.RemovedGrant
	events     [][]fsmpb.ManagementEvent
	released   bool
}

// Snapshot captures the current state and applied index.
func (f *FSM) Snapshot() (*Snapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := f.st
	return &Snapshot{
		index:      f.applied.Load(),
		region:     st.region,
		domainKeys: append([]*fsmpb.DomainKey(nil), st.domainKeys...),
		nodes:      st.nodes.frozen(),
		keys:       st.keys.frozen(),
		aliases:    st.aliases.frozen(),
		grants:     st.grants.frozen(),
		removed:    st.removedGrants.frozen(),
		events:     st.events.frozen(),
	}, nil
}

// Release drops the snapshot's references so the records it alone kept can
// be collected.
func (s *Snapshot) Release() {
	*s = Snapshot{released: true}
}

// WriteTo writes the snapshot stream to w; it is safe to call while the FSM
// keeps applying.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	if s.released {
		return 0, errors.New("fsm: snapshot written after Release")
	}
	sw := &snapshotWriter{counter: counter{w: w}, crc: crc32.New(castagnoli)}
	sw.buf = bufio.NewWriterSize(&sw.counter, 32<<10)

	var header [snapshotHeaderLen]byte
	copy(header[:], snapshotMagic)
	binary.BigEndian.PutUint32(header[len(snapshotMagic):], snapshotFormatVersion)
	binary.BigEndian.PutUint64(header[len(snapshotMagic)+4:], s.index)
	sw.write(header[:])

	if s.region != nil {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Region{Region: s.region}})
	}
	for _, dk := range s.domainKeys {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_DomainKey{DomainKey: dk}})
	}
	for e := range flatten(s.nodes) {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Node{Node: e.v}})
	}
	for e := range flatten(s.keys) {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Key{Key: e.v}})
	}
	for e := range flatten(s.aliases) {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Alias{Alias: e.v}})
	}
	for e := range flatten(s.grants) {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_Grant{Grant: e.v}})
	}
	// In removal order, not by id: pruning walks them in that order, so a
	// restored node must keep it to forget the same ones.
	for rg := range elements(s.removed) {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_RemovedGrant{RemovedGrant: rg}})
	}
	for ev := range elements(s.events) {
		sw.record(&fsmpb.SnapshotRecord{Record: &fsmpb.SnapshotRecord_ManagementEvent{ManagementEvent: ev}})
	}

	sw.write([]byte{0})
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], sw.crc.Sum32())
	if sw.err == nil {
		_, sw.err = sw.buf.Write(sum[:])
	}
	if sw.err == nil {
		sw.err = sw.buf.Flush()
	}
	if sw.err != nil {
		return sw.counter.n, fmt.Errorf("fsm: write snapshot: %w", sw.err)
	}
	return sw.counter.n, nil
}

// flatten yields the entries of a table's blocks.
func flatten[T any](chunks [][]T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, c := range chunks {
			for _, e := range c {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// snapshotWriter keeps the first error so WriteTo reads as a plain sequence.
type snapshotWriter struct {
	counter counter
	buf     *bufio.Writer
	crc     hash.Hash32
	scratch []byte
	err     error
}

func (w *snapshotWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	w.crc.Write(p)
	_, w.err = w.buf.Write(p)
}

func (w *snapshotWriter) record(rec *fsmpb.SnapshotRecord) {
	if w.err != nil {
		return
	}
	// scratch is reused: records are marshalled one at a time.
	w.scratch, w.err = deterministic.MarshalAppend(w.scratch[:0], rec)
	if w.err != nil {
		return
	}
	var prefix [binary.MaxVarintLen64]byte
	w.write(prefix[:binary.PutUvarint(prefix[:], uint64(len(w.scratch)))])
	w.write(w.scratch)
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restore replaces the whole state with the snapshot read from r. It builds
// the new state aside and swaps it in only if the stream is complete and
// consistent; otherwise the FSM is unchanged.
func (f *FSM) Restore(r io.Reader) error {
	st, index, err := readSnapshot(r)
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	f.mu.Lock()
	f.st = st
	f.applied.Store(index)
	f.mu.Unlock()
	f.waiters.release(index)
	f.logger.Info("restored snapshot", "index", index, "keys", st.keys.len(), "aliases", st.aliases.len(),
		"grants", st.grants.len(), "nodes", st.nodes.len(), "domain_keys", len(st.domainKeys))
	return nil
}

// checksumReader feeds the checksum exactly the bytes Restore consumes, which
// a TeeReader under bufio would not (it sees read-ahead).
type checksumReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *checksumReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *checksumReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
}

// truncated turns the EOFs of a stream cut short into corruption, and keeps
// other read errors as they are.
func truncated(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt("stream ends inside %s", what)
	}
	return fmt.Errorf("read %s: %w", what, err)
}

func readSnapshot(r io.Reader) (*state, uint64, error) {
	in := &checksumReader{r: bufio.NewReader(r), crc: crc32.New(castagnoli)}

	var header [snapshotHeaderLen]byte
	if _, err := io.ReadFull(in, header[:]); err != nil {
		return nil, 0, truncated(err, "the header")
	}
	if string(header[:len(snapshotMagic)]) != snapshotMagic {
		return nil, 0, corrupt("not a Trent FSM snapshot (magic %q)", header[:len(snapshotMagic)])
	}
	version := binary.BigEndian.Uint32(header[len(snapshotMagic):])
	if version < minSnapshotVersion || version > snapshotFormatVersion {
		return nil, 0, corrupt("format version %d, this build reads %d to %d", version, minSnapshotVersion, snapshotFormatVersion)
	}
	index := binary.BigEndian.Uint64(header[len(snapshotMagic)+4:])

	b := newStateBuilder(version, index)
	var buf []byte
	for n := 0; ; n++ {
		length, err := binary.ReadUvarint(in)
		if err != nil {
			return nil, 0, truncated(err, fmt.Sprintf("the length of record %d", n))
		}
		if length == 0 {
			break
		}
		if length > maxSnapshotRecordLen {
			return nil, 0, corrupt("record %d claims %d bytes", n, length)
		}
		if buf, err = readRecord(in, length, buf); err != nil {
			return nil, 0, truncated(err, fmt.Sprintf("record %d", n))
		}
		rec := new(fsmpb.SnapshotRecord)
		if err := proto.Unmarshal(buf, rec); err != nil {
			return nil, 0, corrupt("record %d: %v", n, err)
		}
		if err := b.add(rec); err != nil {
			return nil, 0, corrupt("record %d: %v", n, err)
		}
	}

	want := in.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(in.r, sum[:]); err != nil {
		return nil, 0, truncated(err, "the checksum")
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return nil, 0, corrupt("checksum %08x, content has %08x", got, want)
	}
	if _, err := in.r.ReadByte(); err != io.EOF {
		if err != nil {
			return nil, 0, fmt.Errorf("read past the checksum: %w", err)
		}
		return nil, 0, corrupt("bytes after the checksum")
	}
	st, err := b.build()
	if err != nil {
		return nil, 0, corrupt("%v", err)
	}
	return st, index, nil
}

// readRecord reads length bytes into buf. Beyond a size real records rarely
// reach, it grows the buffer as bytes arrive, so a damaged length prefix on a
// short stream fails fast instead of allocating what it claims.
func readRecord(in io.Reader, length uint64, buf []byte) ([]byte, error) {
	const preallocLimit = 1 << 20
	if length > preallocLimit {
		data, err := io.ReadAll(io.LimitReader(in, int64(length)))
		if err == nil && uint64(len(data)) < length {
			err = io.ErrUnexpectedEOF
		}
		return data, err
	}
	if uint64(cap(buf)) < length {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	_, err := io.ReadFull(in, buf)
	return buf, err
}

// stateBuilder collects records in any order, except that removed grants and
// events keep theirs, and checks the invariants Apply maintains, so a
// restored state is one Apply could have produced.
type stateBuilder struct {
	version    uint32
	index      uint64 // the snapshot's applied index
	region     *fsmpb.Region
	domainKeys []*fsmpb.DomainKey
	dkIDs      map[string]bool
	nodes      map[string]*fsmpb.Node
	keys       map[string]*fsmpb.Key
	aliases    map[string]*fsmpb.Alias
	grants     map[string]*fsmpb.Grant
	removed    []*fsmpb.RemovedGrant
	removedIDs map[string]struct{}
	events     []*fsmpb.ManagementEvent
}

func newStateBuilder(version uint32, index uint64) *stateBuilder {
	return &stateBuilder{
		version:    version,
		index:      index,
		dkIDs:      make(map[string]bool),
		nodes:      make(map[string]*fsmpb.Node),
		keys:       make(map[string]*fsmpb.Key),
		aliases:    make(map[string]*fsmpb.Alias),
		grants:     make(map[string]*fsmpb.Grant),
		removedIDs: make(map[string]struct{}),
	}
}

func (b *stateBuilder) add(rec *fsmpb.SnapshotRecord) error {
	switch rec.Record.(type) {
	case *fsmpb.SnapshotRecord_Grant, *fsmpb.SnapshotRecord_RemovedGrant, *fsmpb.SnapshotRecord_ManagementEvent:
		if b.version < 2 {
			return fmt.Errorf("format version %d holds no %T", b.version, rec.Record)
		}
	}
	switch r := rec.Record.(type) {
	case *fsmpb.SnapshotRecord_Region:
		if b.region != nil {
			return errors.New("second region record")
		}
		if r.Region.GetName() == "" {
			return errors.New("region without a name")
		}
		b.region = r.Region
	case *fsmpb.SnapshotRecord_DomainKey:
		id := r.DomainKey.GetId()
		if id == "" || b.dkIDs[id] {
			return fmt.Errorf("domain key id %q empty or repeated", id)
		}
		b.dkIDs[id] = true
		b.domainKeys = append(b.domainKeys, r.DomainKey)
	case *fsmpb.SnapshotRecord_Node:
		id := r.Node.GetId()
		if _, dup := b.nodes[id]; id == "" || dup {
			return fmt.Errorf("node id %q empty or repeated", id)
		}
		b.nodes[id] = r.Node
	case *fsmpb.SnapshotRecord_Key:
		k := r.Key
		id := k.GetKeyId()
		if _, dup := b.keys[id]; id == "" || dup {
			return fmt.Errorf("key id %q empty or repeated", id)
		}
		if st := k.GetState(); st != enabled && st != disabled && st != pendingDeletion &&
			(st != pendingReplicaDeletion || k.GetMultiRegion() == nil) {
			return fmt.Errorf("key %s in state %v", id, st)
		}
		if len(k.GetVersions()) == 0 {
			return fmt.Errorf("key %s without versions", id)
		}
		if n := len(k.GetPolicy()); n > maxPolicyBytes {
			return fmt.Errorf("key %s with a policy of %d bytes", id, n)
		}
		if k.GetMultiRegion() != nil && b.version < 3 {
			return fmt.Errorf("format version %d holds no multi-region key (%s)", b.version, id)
		}
		b.keys[id] = k
	case *fsmpb.SnapshotRecord_Alias:
		name := r.Alias.GetName()
		if _, dup := b.aliases[name]; name == "" || dup {
			return fmt.Errorf("alias name %q empty or repeated", name)
		}
		b.aliases[name] = r.Alias
	case *fsmpb.SnapshotRecord_Grant:
		id := r.Grant.GetGrantId()
		if _, dup := b.grants[id]; id == "" || dup {
			return fmt.Errorf("grant id %q empty or repeated", id)
		}
		b.grants[id] = r.Grant
	case *fsmpb.SnapshotRecord_RemovedGrant:
		id := r.RemovedGrant.GetGrantId()
		if _, dup := b.removedIDs[id]; id == "" || dup {
			return fmt.Errorf("removed grant id %q empty or repeated", id)
		}
		b.removedIDs[id] = struct{}{}
		b.removed = append(b.removed, r.RemovedGrant)
	case *fsmpb.SnapshotRecord_ManagementEvent:
		ev := r.ManagementEvent
		if n := len(b.events); n > 0 && ev.GetIndex() <= b.events[n-1].GetIndex() {
			return fmt.Errorf("management event index %d after %d", ev.GetIndex(), b.events[n-1].GetIndex())
		}
		if ev.GetIndex() == 0 || ev.GetIndex() > b.index {
			return fmt.Errorf("management event index %d outside 1..%d, the snapshot's index", ev.GetIndex(), b.index)
		}
		if len(b.events) == MaxManagementEvents {
			return fmt.Errorf("more than %d management events", MaxManagementEvents)
		}
		b.events = append(b.events, ev)
	default:
		return errors.New("record of an unknown type")
	}
	return nil
}

func (b *stateBuilder) build() (*state, error) {
	if b.region == nil && len(b.domainKeys) > 0 {
		return nil, errors.New("domain keys without a region")
	}
	if b.region != nil && !b.dkIDs[b.region.GetActiveDomainKeyId()] {
		return nil, fmt.Errorf("region's active domain key %q is not in the snapshot", b.region.GetActiveDomainKeyId())
	}
	if r := b.region; len(r.GetGrantTokenKey()) > 0 && !b.dkIDs[r.GetGrantTokenDomainKeyId()] {
		return nil, fmt.Errorf("region's grant token key is wrapped under domain key %q, which is not in the snapshot",
			r.GetGrantTokenDomainKeyId())
	}
	if r := b.region; len(r.GetSigningKeyToken()) > 0 && !b.dkIDs[r.GetSigningDomainKeyId()] {
		return nil, fmt.Errorf("region's signing key is wrapped under domain key %q, which is not in the snapshot",
			r.GetSigningDomainKeyId())
	}
	toShip := make(map[string]*fsmpb.Key)
	// Sorted, so that the first error is the same on every node.
	for _, id := range slices.Sorted(maps.Keys(b.keys)) {
		k := b.keys[id]
		if err := checkMultiRegion(k, b.region.GetName()); err != nil {
			return nil, err
		}
		if len(ShipTargets(k, b.region.GetName())) > 0 {
			toShip[id] = k
		}
	}
	for _, name := range slices.Sorted(maps.Keys(b.aliases)) {
		if a := b.aliases[name]; !b.hasKey(a.GetTargetKeyId()) {
			return nil, fmt.Errorf("alias %s points at missing key %q", name, a.GetTargetKeyId())
		}
	}
	byKey := make(map[string]*fsmpb.Grant, len(b.grants))
	keyGrants := make(map[string][]*fsmpb.Grant)
	for _, id := range slices.Sorted(maps.Keys(b.grants)) {
		g := b.grants[id]
		if !b.hasKey(g.GetKeyId()) {
			return nil, fmt.Errorf("grant %s is on missing key %q", id, g.GetKeyId())
		}
		if _, removed := b.removedIDs[id]; removed {
			return nil, fmt.Errorf("grant %s is both present and removed", id)
		}
		byKey[grantsByKeyID(g.GetKeyId(), id)] = g
		keyGrants[g.GetKeyId()] = append(keyGrants[g.GetKeyId()], g)
	}
	for _, list := range keyGrants {
		slices.SortFunc(list, compareCreation)
	}
	st := &state{
		region:          b.region,
		domainKeys:      b.domainKeys,
		nodes:           tableOf(b.nodes),
		keys:            tableOf(b.keys),
		aliases:         tableOf(b.aliases),
		grants:          tableOf(b.grants),
		grantsByKey:     tableOf(byKey),
		keyGrants:       keyGrants,
		removedGrantIDs: b.removedIDs,
		toShip:          toShip,
	}
	// Merged into place: the log stores its elements, not pointers.
	for _, rg := range b.removed {
		proto.Merge(st.removedGrants.add(), rg)
	}
	for _, ev := range b.events {
		proto.Merge(st.events.add(), ev)
	}
	return st, nil
}

func (b *stateBuilder) hasKey(id string) bool {
	_, ok := b.keys[id]
	return ok
}

// checkMultiRegion checks the invariants Apply keeps for a key's
// multi-region state, here being the region's name.
func checkMultiRegion(k *fsmpb.Key, here string) error {
	id, mr := k.GetKeyId(), k.GetMultiRegion()
	if mr == nil {
		if strings.HasPrefix(id, MRKPrefix) {
			return fmt.Errorf("key %s has a multi-region id but no multi-region record", id)
		}
		return nil
	}
	if !IsMRKID(id) {
		return fmt.Errorf("multi-region key %q lacks a multi-region id", id)
	}
	if mr.GetPrimaryRegion() == "" || mr.GetEpoch() == 0 {
		return fmt.Errorf("multi-region key %s with primary %q and epoch %d", id, mr.GetPrimaryRegion(), mr.GetEpoch())
	}
	primary := mr.GetPrimaryRegion() == here
	if k.GetState() == pendingReplicaDeletion && !primary {
		return fmt.Errorf("replica key %s pending replica deletion", id)
	}
	if n := len(mr.GetReplicas()); n > maxReplicas {
		return fmt.Errorf("multi-region key %s with %d replicas", id, n)
	}
	seen := make(map[string]bool, len(mr.GetReplicas()))
	for _, r := range mr.GetReplicas() {
		if r.GetRegion() == "" || r.GetRegion() == mr.GetPrimaryRegion() || seen[r.GetRegion()] {
			return fmt.Errorf("multi-region key %s: replica region %q empty, the primary or repeated", id, r.GetRegion())
		}
		seen[r.GetRegion()] = true
		if primary && r.GetAckedSeq() > mr.GetSharedSeq() {
			return fmt.Errorf("multi-region key %s: replica %s acked seq %d above shared seq %d",
				id, r.GetRegion(), r.GetAckedSeq(), mr.GetSharedSeq())
		}
	}
	versions := make(map[string]bool, len(k.GetVersions()))
	for _, v := range k.GetVersions() {
		if versions[string(v.GetVersionId())] {
			return fmt.Errorf("multi-region key %s repeats version %x", id, v.GetVersionId())
		}
		versions[string(v.GetVersionId())] = true
		if primary && v.GetUnshipped() {
			return fmt.Errorf("multi-region key %s: version %x unshipped at the primary", id, v.GetVersionId())
		}
	}
	cur, ok := FindVersion(k, mr.GetCurrentVersionId())
	if !ok || cur.GetPending() {
		return fmt.Errorf("multi-region key %s: current version %x missing or pending", id, mr.GetCurrentVersionId())
	}
	return nil
}

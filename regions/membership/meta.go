package membership

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/memberlist"

	"github.com/trent-kms/trent/cluster"
)

// metaVersion is the first byte of every encoded metadata. See DESIGN.md for the rule: fields
// are only ever appended within a version, and decoders ignore what follows the fields they know,
// so a rolling upgrade that adds a field keeps old and new nodes in one pool. A change old
// decoders would misread needs a new version.
const metaVersion = 1

// Flag bits. Unknown bits are ignored for the same reason trailing bytes are.
const (
	flagLeader   = 1 << 0
	flagNonvoter = 1 << 1
	flagLeaving  = 1 << 2
	// flagWANAddr: a fifth field, the node's WAN pool address, follows the four others. Region
	// peers read it to join each other's WAN pools (JoinRegionPeersWAN).
	flagWANAddr = 1 << 3
)

// maxMetaSize is memberlist's hard limit: it panics on larger metadata, so Start checks it.
const maxMetaSize = memberlist.MetaMaxSize

// nodeMeta is what a node gossips about itself.
type nodeMeta struct {
	ID       string
	Region   string
	Role     cluster.Suffrage
	GRPCAddr string
	RaftAddr string
	Leader   bool
	// Leaving is announced just before a graceful leave. memberlist tells its event delegate
	// that a node is gone but not whether it left or died, so peers read it from here.
	Leaving bool
	// WANAddr is the node's WAN pool address; empty in metadata from before the field existed.
	WANAddr string
}

// encode lays out: version, flags, then id, region, gRPC address and Raft address, each as a
// uvarint length followed by the bytes, then the WAN address the same way if flagWANAddr is
// set. A binary layout keeps a node's record well under the 512-byte limit even with long DNS
// names.
func (m nodeMeta) encode() []byte {
	var flags byte
	if m.Leader {
		flags |= flagLeader
	}
	if m.Role == cluster.Nonvoter {
		flags |= flagNonvoter
	}
	if m.Leaving {
		flags |= flagLeaving
	}
	fields := []string{m.ID, m.Region, m.GRPCAddr, m.RaftAddr}
	if m.WANAddr != "" {
		flags |= flagWANAddr
		fields = append(fields, m.WANAddr)
	}
	b := make([]byte, 0, 2+5*binary.MaxVarintLen16+len(m.ID)+len(m.Region)+len(m.GRPCAddr)+len(m.RaftAddr)+len(m.WANAddr))
	b = append(b, metaVersion, flags)
	for _, s := range fields {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) < 2 {
		return nodeMeta{}, fmt.Errorf("%w: %d bytes", errBadMeta, len(b))
	}
	if b[0] != metaVersion {
		return nodeMeta{}, fmt.Errorf("%w: version %d", errBadMeta, b[0])
	}
	m := nodeMeta{Leader: b[1]&flagLeader != 0, Leaving: b[1]&flagLeaving != 0, Role: cluster.Voter}
	if b[1]&flagNonvoter != 0 {
		m.Role = cluster.Nonvoter
	}
	rest := b[2:]
	fields := []*string{&m.ID, &m.Region, &m.GRPCAddr, &m.RaftAddr}
	if b[1]&flagWANAddr != 0 {
		fields = append(fields, &m.WANAddr)
	}
	for _, field := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nodeMeta{}, fmt.Errorf("%w: truncated field", errBadMeta)
		}
		*field = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if m.ID == "" || m.Region == "" {
		return nodeMeta{}, fmt.Errorf("%w: empty id or region", errBadMeta)
	}
	return m, nil
}

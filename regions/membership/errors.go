package membership

import "errors"

// Sentinel errors. Every error this package returns for one of these conditions wraps the
// sentinel, so callers test with errors.Is.
var (
	// ErrInvalidConfig: Start or NewReaper was given a config it cannot run with. The wrapping
	// error names the field.
	ErrInvalidConfig = errors.New("membership: invalid config")

	// ErrJoin: no seed of a join could be reached and merged with. Typical causes: no seed is
	// up yet, a seed gossips with another keyring, or (LAN) a seed belongs to another region.
	// The wrapping error carries memberlist's per-seed reasons.
	ErrJoin = errors.New("membership: join failed")

	// ErrShutdown: the Membership has been shut down.
	ErrShutdown = errors.New("membership: shut down")

	// ErrUpdateDropped: a metadata change (SetLeader) could not be announced: memberlist kept
	// dropping it. Peers still see the previous metadata; call again.
	ErrUpdateDropped = errors.New("membership: metadata update dropped")

	// errBadMeta: a peer's metadata does not decode. Peers gossiping it are ignored.
	errBadMeta = errors.New("membership: malformed node metadata")

	// errForeignRegion: a peer in a LAN pool claims another region. The node is refused so that
	// a region's pool, and the Raft group that trusts it for discovery, never mixes regions.
	errForeignRegion = errors.New("membership: node belongs to another region")
)

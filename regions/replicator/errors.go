package replicator

import "errors"

// Errors of the receiving side; transport maps them to gRPC statuses.
var (
	// ErrForged: a shipment's signature does not verify, it is signed with
	// another key than the one pinned for its region, or it names another
	// source region than the sending node's certificate.
	ErrForged = errors.New("forged replication message")
	// ErrReplayed: a shipment was seen before, or is older than the replay
	// window.
	ErrReplayed = errors.New("replayed replication message")
	// ErrMisdirected: a shipment is meant for another region or node, or
	// comes from this region.
	ErrMisdirected = errors.New("misdirected replication message")
	// ErrMalformed: a shipment does not decode or breaks the format.
	ErrMalformed = errors.New("malformed replication message")
	// ErrNotReady: this node's region is not initialised yet.
	ErrNotReady = errors.New("region not ready for replication")
)

// Package fsm owns the replicated state of one Trent region: keys with their
// versions, key tokens and policies, multi-region keys' replication state
// (primary, epoch, replica cursors), aliases, tags, grants, the region's
// domain keys and its registered nodes, and a bounded log of management
// events. It defines how each Raft log entry changes that state
// (Apply), how the state is captured and rebuilt (Snapshot, Restore), and the
// reads the rest of the node serves from it.
//
// Apply is deterministic: it reads no clock, draws no randomness and does no
// I/O, so every node that applies the same log holds the same state. The
// proposer puts the time, the ids and the already-wrapped key material into
// the fsmpb.Command. A command the rules refuse is returned as a *RejectError
// and changes nothing but the management events; an entry that cannot be decoded panics, because
// skipping it would let this node diverge.
//
// Records handed out by the read methods and in Result are shared and
// immutable: Apply replaces a record with a changed clone instead of
// modifying it, which is what lets the data plane read keys under a read lock
// without copying. Callers must not modify them.
//
// The package imports only the standard library, protobuf and fsmpb; the
// cluster package adapts it to hashicorp/raft. See DESIGN.md.
package fsm

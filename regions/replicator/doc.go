// Package replicator owns cross-region replication of multi-region keys: the
// sender that runs on each region's leader and ships changes to the other
// regions (Run), and the receiving side every node serves (Hello, Ship),
// which checks a shipment's signature, origin and freshness, re-wraps its key
// material under this region's domain key inside the HSM, and applies it
// through this region's Raft.
//
// What to ship comes from replicated state (fsm.MultiRegionKeysToShip and
// the replicas' cursors), so a new leader resumes where the old one stopped;
// the receiver's Apply is idempotent, so a shipment repeated after a leader
// change or a lost reply changes nothing. DESIGN.md beside this file states
// the invariants and the message format.
package replicator

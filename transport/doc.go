// Package transport owns Trent's gRPC surface: the public KMS and Cluster
// services, the node-to-node Internal service (write forwarding, read-index,
// join), request validation, the authorize hook every handler calls, and the
// mapping of errors to gRPC status codes — the only place that mapping
// happens.
//
// Writes are proposed on the region leader: a handler builds an fsm Command
// (time, ids and HSM-wrapped material chosen here, so Apply stays
// deterministic) and proposes it locally or forwards it to the leader.
// Cryptographic operations are served by the node that receives them, after a
// read barrier, from its local state and HSM.
package transport

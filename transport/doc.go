// Package transport owns Trent's gRPC surface: the public KMS and Cluster
// services, the node-to-node Internal service (write forwarding, read-index,
// join), request validation, the authorize hook every handler calls, and the
// mapping of errors to gRPC status codes — the only place that mapping
// happens.
//
// Every connection is mutual TLS 1.3 (package pki). AuthInterceptor
// (tlsauth.go) decides which certificate may call which service, and
// callerFrom (identity.go) is the one place a request's identity is read.
//
// AuditInterceptor (auditing.go), first in the chain, appends one record per
// client request to the node's audit log (package audit) before the answer
// leaves; UnaryInterceptor serves no client request it has not seen.
//
// Writes are proposed on the region leader: a handler builds an fsm Command
// (time, ids and HSM-wrapped material chosen here, so Apply stays
// deterministic) and proposes it locally or forwards it to the leader.
// Cryptographic operations are served by the node that receives them, after a
// read barrier, from its local state and HSM.
package transport

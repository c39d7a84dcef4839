// Package cluster runs one node of a region's Raft group: hashicorp/raft with a raft-boltdb
// log and stable store and file snapshots under DataDir/raft, bootstrap, joining and removing
// servers, batched Apply, and linearizable reads through a batched read index.
//
// The package drives a StateMachine (fsm.FSM satisfies it) through an internal raft.BatchingFSM
// adapter and never imports fsm. The composition root wires the two:
//
//	node, err := cluster.Open(cluster.Config{
//		NodeID:       id,
//		DataDir:      dir,
//		BindAddr:     "127.0.0.1:0",
//		StateMachine: f,
//		Snapshot:     func() (cluster.StateSnapshot, error) { return f.Snapshot() },
//	})
//	node.SetReadIndexFetcher(rpcToLeaderReadIndex) // supplied by transport
//
// Writes go through Apply on the leader; a follower answers with a *NotLeaderError naming the
// leader, so the caller can forward. Reads call ReadBarrier first, then read the state machine:
// the barrier returns once this node has applied everything the leader had committed when the
// barrier was called, and fails with ErrNoLeader on a node cut off from the leader. DESIGN.md
// beside this file explains the read-index protocol.
package cluster

// Package membership owns gossip membership: how a node finds the other nodes of its region and
// the other regions, what it tells them about itself, and how long-failed servers leave the
// region's Raft configuration.
//
// Each node runs two hashicorp/memberlist pools. The LAN pool holds one region's nodes and
// admits no other region: it is what a node uses to discover and join its region's Raft group.
// The WAN pool holds every region's nodes: it tells each region where the others are and which
// of their nodes leads, which is where the replicator sends its changes. Both pools are
// encrypted and authenticated with a keyring; a node with other keys cannot join.
//
// Every node gossips a small metadata record: id, region, role (SetRole), gRPC and Raft
// addresses, and whether it leads its region (SetLeader). LANMembers, WANMembers and RegionLeaders read the
// pools; Config.OnEvent hears joins, updates and departures.
//
//	m, err := membership.Start(ctx, membership.Config{
//		NodeID: id, Region: "eu-1", GRPCAddr: grpcAddr, RaftAddr: raftAddr,
//		LANBind: "10.0.0.7:7946", WANBind: "10.0.0.7:7947",
//		Keys: [][]byte{lanKey}, WANKeys: [][]byte{wanKey},
//		Logger: logger,
//	})
//	_, err = membership.RetryJoin(ctx, m.JoinLAN, regionSeeds, time.Second)
//	_, err = membership.RetryJoin(ctx, m.JoinWAN, otherRegionSeeds, time.Second)
//
// CleanupPolicy decides which failed servers to remove from the Raft configuration, and a Reaper
// applies it on the region leader through a Remover (*cluster.Node). DESIGN.md beside this file
// states the invariants.
package membership

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// raftKMS answers CreateKey with one raw Raft apply of a fixed entry, and
// nothing else: the path a Trent write takes (a gRPC+TLS call to any node, a
// follower forwarding it to the leader over gRPC+TLS, a Raft commit) without
// Trent's own work (HSM, state machine, audit, authorization).
type raftKMS struct {
	kmspb.UnimplementedKMSServer
	id       raft.ServerID
	node     *raftNode
	entry    []byte
	timeout  time.Duration
	peers    map[raft.ServerID]kmspb.KMSClient // complete before any server serves
	response *kmspb.CreateKeyResponse
}

// forwardedKey marks a call one node forwarded to another: its receiver
// applies it or refuses it, and never forwards it again, as Trent's
// Internal.Apply does.
const forwardedKey = "kmsbench-forwarded"

func (s *raftKMS) CreateKey(ctx context.Context, req *kmspb.CreateKeyRequest) (*kmspb.CreateKeyResponse, error) {
	if s.node.raft.State() == raft.Leader {
		if err := s.node.raft.Apply(s.entry, s.timeout).Error(); err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return s.response, nil
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(forwardedKey)) > 0 {
		return nil, status.Error(codes.Unavailable, "forwarded to a node that no longer leads")
	}
	_, leaderID := s.node.raft.LeaderWithID()
	leader := s.peers[leaderID]
	if leader == nil || leaderID == s.id {
		return nil, status.Error(codes.Unavailable, "no leader known")
	}
	return leader.CreateKey(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), req)
}

// raftServer is the gRPC servers in front of a raft-baseline cluster.
type raftServer struct {
	listeners []net.Listener
	servers   []*grpc.Server
	conns     []*grpc.ClientConn
	endpoints []string
}

// startRaftServer puts a gRPC server in front of each of cluster's nodes.
// Every listener and forwarding connection exists before the first server
// serves, so the servers share a peer map nobody writes any more.
func startRaftServer(cfg *raftServerConfig, cluster *raftCluster) (_ *raftServer, err error) {
	s := &raftServer{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	creds, err := serverCreds(cfg.tlsDir)
	if err != nil {
		return nil, err
	}
	// Followers forward with the node certificate, as Trent's nodes do.
	forwarder, err := loadCertificate(cfg.tlsDir, pki.NodeCertFile, pki.NodeKeyFile)
	if err != nil {
		return nil, err
	}
	peers := map[raft.ServerID]kmspb.KMSClient{}
	for i := range cluster.nodes {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		s.listeners = append(s.listeners, lis)
		addr := lis.Addr().String()
		s.endpoints = append(s.endpoints, addr)
		host, _, _ := net.SplitHostPort(addr)
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(forwarder.ClientConfig(host))))
		if err != nil {
			return nil, err
		}
		s.conns = append(s.conns, conn)
		peers[raftNodeID(i)] = kmspb.NewKMSClient(conn)
	}
	entry := make([]byte, cfg.size)
	for i, node := range cluster.nodes {
		srv := grpc.NewServer(creds)
		kmspb.RegisterKMSServer(srv, &raftKMS{
			id: raftNodeID(i), node: node, entry: entry, timeout: cfg.timeout, peers: peers,
			response: &kmspb.CreateKeyResponse{KeyMetadata: &kmspb.KeyMetadata{KeyId: "00000000-0000-0000-0000-000000000000"}},
		})
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(s.listeners[i]) }()
	}
	return s, nil
}

func (s *raftServer) stop() {
	for _, srv := range s.servers {
		stopGracefully(srv, 5*time.Second)
	}
	for _, lis := range s.listeners[len(s.servers):] { // never served
		_ = lis.Close()
	}
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func runRaftServer(ctx context.Context, cfg *raftServerConfig, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "kmsbench raft-server: "+format+"\n", args...)
	}
	return onRaftCluster(ctx, cfg.nodes, stderr, logf, func(cluster *raftCluster, _ *raft.Raft) int {
		s, err := startRaftServer(cfg, cluster)
		if err != nil {
			logf("%v", err)
			return 1
		}
		defer s.stop()
		fmt.Fprintf(stdout, "ready grpc=%s\n", strings.Join(s.endpoints, ","))
		<-ctx.Done()
		return 0
	})
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// The lines a raft-node process and its raft-server parent exchange, one
// per line: the child announces its addresses, the parent answers with
// every node's, the child says when it serves and whenever it starts or
// stops leading.
const (
	nodeListening = "listening" // child: listening RAFT_ADDR GRPC_ADDR
	nodePeers     = "peers"     // parent: peers RAFT_ADDR,GRPC_ADDR ... in node order
	nodeServing   = "serving"
	nodeLeading   = "leading"
	nodeFollowing = "following"
)

// runRaftNode is one node of raft-server in a process of its own, as each
// Trent node is: Raft over mutual TLS with a bolt log on disk, behind a gRPC
// server whose CreateKey is one apply. It talks to its parent over stdin and
// stdout and stops when stdin closes or ctx ends.
func runRaftNode(ctx context.Context, cfg *raftNodeConfig, stdin io.Reader, stdout, stderr io.Writer) int {
	name := string(raftNodeID(cfg.index))
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "kmsbench raft-node %s: "+format+"\n", append([]any{name}, args...)...)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan string)
	go func() {
		defer cancel() // the parent closed stdin, or died
		scan := bufio.NewScanner(stdin)
		for scan.Scan() {
			select {
			case lines <- scan.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	node, err := openRaftNodeProcess(cfg, stderr)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer node.close()
	fmt.Fprintf(stdout, "%s %s %s\n", nodeListening, node.transport.LocalAddr(), node.grpcListener.Addr())

	var peers []raftPeer
	select {
	case line := <-lines:
		if peers, err = parsePeers(line, cfg.nodes); err != nil {
			logf("%v", err)
			return 1
		}
	case <-ctx.Done():
		return 0
	}
	if err := node.serve(cfg, peers); err != nil {
		logf("%v", err)
		return 1
	}
	fmt.Fprintln(stdout, nodeServing)
	for {
		select {
		case <-ctx.Done():
			return 0
		case leading := <-node.raft.LeaderCh():
			if leading {
				fmt.Fprintln(stdout, nodeLeading)
			} else {
				fmt.Fprintln(stdout, nodeFollowing)
			}
		}
	}
}

type raftPeer struct {
	raftAddr, grpcAddr string
}

func parsePeers(line string, nodes int) ([]raftPeer, error) {
	fields := strings.Fields(line)
	if len(fields) != nodes+1 || fields[0] != nodePeers {
		return nil, fmt.Errorf("expected %q and %d peers, got %q", nodePeers, nodes, line)
	}
	var peers []raftPeer
	for _, f := range fields[1:] {
		raftAddr, grpcAddr, ok := strings.Cut(f, ",")
		if !ok {
			return nil, fmt.Errorf("peer %q is not RAFT_ADDR,GRPC_ADDR", f)
		}
		for _, addr := range []string{raftAddr, grpcAddr} {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return nil, fmt.Errorf("peer %q: %w", f, err)
			}
		}
		peers = append(peers, raftPeer{raftAddr, grpcAddr})
	}
	return peers, nil
}

// raftNodeProcess is what one raft-node process runs.
type raftNodeProcess struct {
	*raftNode
	tls          *pki.Reloader
	grpcListener net.Listener
	server       *grpc.Server
	conns        []*grpc.ClientConn
}

// openRaftNodeProcess opens both listeners and the Raft node, which waits
// for serve to bootstrap it.
func openRaftNodeProcess(cfg *raftNodeConfig, stderr io.Writer) (*raftNodeProcess, error) {
	id := raftNodeID(cfg.index)
	tls, err := loadCertificate(cfg.tlsDir, pki.NodeCertFile, pki.NodeKeyFile)
	if err != nil {
		return nil, err
	}
	grpcListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	raftListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = grpcListener.Close()
		return nil, err
	}
	// Trent's own Raft transport: mutual TLS between node certificates of
	// one region (the certificate's). Refused peers are logged.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", string(id))
	stream := pki.NewStreamLayer(raftListener, tls, tls.Identity().Region, logger)
	transport := cluster.NewStreamTransport(stream, logger)
	raftLogger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: stderr})
	node, err := openRaftNode(cfg.index, cfg.dir, transport, raftLogger) // closes transport on failure
	if err != nil {
		_ = grpcListener.Close()
		return nil, err
	}
	return &raftNodeProcess{raftNode: node, tls: tls, grpcListener: grpcListener}, nil
}

// serve bootstraps the node with its peers and serves gRPC.
func (n *raftNodeProcess) serve(cfg *raftNodeConfig, peers []raftPeer) error {
	var addrs []raft.ServerAddress
	kmsPeers := map[raft.ServerID]kmspb.KMSClient{}
	for i, p := range peers {
		addrs = append(addrs, raft.ServerAddress(p.raftAddr))
		host, _, _ := net.SplitHostPort(p.grpcAddr) // checked by parsePeers
		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(n.tls.ClientConfig(host))))
		if err != nil {
			return err
		}
		n.conns = append(n.conns, conn)
		kmsPeers[raftNodeID(i)] = kmspb.NewKMSClient(conn)
	}
	if err := n.raft.BootstrapCluster(bootstrapConfiguration(addrs)).Error(); err != nil {
		return fmt.Errorf("bootstrapping: %w", err)
	}
	n.server = grpc.NewServer(grpc.Creds(credentials.NewTLS(n.tls.ServerConfig())))
	kmspb.RegisterKMSServer(n.server, &raftKMS{
		id: raftNodeID(cfg.index), raft: n.raft, entry: make([]byte, cfg.size), timeout: cfg.timeout, peers: kmsPeers,
		response: &kmspb.CreateKeyResponse{KeyMetadata: &kmspb.KeyMetadata{KeyId: "00000000-0000-0000-0000-000000000000"}},
	})
	go func() { _ = n.server.Serve(n.grpcListener) }()
	return nil
}

func (n *raftNodeProcess) close() {
	if n.server != nil {
		stopGracefully(n.server, 5*time.Second)
	} else {
		_ = n.grpcListener.Close()
	}
	n.raftNode.close()
	for _, c := range n.conns {
		_ = c.Close()
	}
}

// raftKMS answers CreateKey with one raw Raft apply of a fixed entry, and
// nothing else: the path a Trent write takes (a gRPC+TLS call to any node, a
// follower forwarding it to the leader over gRPC+TLS, a Raft commit over
// TLS) without Trent's own work (HSM, state machine, audit, authorization).
type raftKMS struct {
	kmspb.UnimplementedKMSServer
	id       raft.ServerID
	raft     *raft.Raft
	entry    []byte
	timeout  time.Duration
	peers    map[raft.ServerID]kmspb.KMSClient // complete before the server serves
	response *kmspb.CreateKeyResponse
}

// forwardedKey marks a call one node forwarded to another: its receiver
// applies it or refuses it, and never forwards it again, as Trent's
// Internal.Apply does.
const forwardedKey = "kmsbench-forwarded"

func (s *raftKMS) CreateKey(ctx context.Context, req *kmspb.CreateKeyRequest) (*kmspb.CreateKeyResponse, error) {
	if s.raft.State() == raft.Leader {
		if err := s.raft.Apply(s.entry, s.timeout).Error(); err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return s.response, nil
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(forwardedKey)) > 0 {
		return nil, status.Error(codes.Unavailable, "forwarded to a node that no longer leads")
	}
	_, leaderID := s.raft.LeaderWithID()
	leader := s.peers[leaderID]
	if leader == nil || leaderID == s.id {
		return nil, status.Error(codes.Unavailable, "no leader known")
	}
	return leader.CreateKey(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), req)
}

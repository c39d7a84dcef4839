package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// The lines a raft-node process and its raft-server parent exchange, one
// per line: the child announces its addresses, the parent answers with
// every node's, the child reports when it serves and when it leads.
const (
	nodeListening = "listening" // child: listening RAFT_ADDR GRPC_ADDR
	nodePeers     = "peers"     // parent: peers RAFT_ADDR,GRPC_ADDR ... in node order
	nodeServing   = "serving"
	nodeLeading   = "leading"
)

// runRaftNode is one node of raft-server in a process of its own, as each
// Trent node is: Raft over mutual TLS with a bolt log on disk, behind a gRPC
// server whose CreateKey is one apply. It talks to its parent over stdin and
// stdout and stops when stdin closes or ctx ends.
func runRaftNode(ctx context.Context, cfg *raftNodeConfig, stdin io.Reader, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "kmsbench raft-node %d: "+format+"\n", append([]any{cfg.index + 1}, args...)...)
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

	node, err := openRaftNodeProcess(cfg)
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
	if err := node.start(cfg, peers); err != nil {
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
		peers = append(peers, raftPeer{raftAddr, grpcAddr})
	}
	return peers, nil
}

// raftNodeProcess is what one raft-node process runs.
type raftNodeProcess struct {
	index        int
	tls          *pki.Reloader
	store        *raftboltdb.BoltStore
	transport    *raft.NetworkTransport
	grpcListener net.Listener
	raft         *raft.Raft
	server       *grpc.Server
	conns        []*grpc.ClientConn
}

// openRaftNodeProcess opens the node's log store and both listeners; start
// does the rest once the peers are known.
func openRaftNodeProcess(cfg *raftNodeConfig) (_ *raftNodeProcess, err error) {
	n := &raftNodeProcess{index: cfg.index}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if n.tls, err = loadCertificate(cfg.tlsDir, pki.NodeCertFile, pki.NodeKeyFile); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.dir, 0o700); err != nil {
		return nil, err
	}
	if n.store, err = raftboltdb.NewBoltStore(filepath.Join(cfg.dir, "raft.db")); err != nil {
		return nil, err
	}
	raftListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Trent's own Raft transport: mutual TLS between node certificates of
	// one region (the certificate's).
	stream := pki.NewStreamLayer(raftListener, n.tls, n.tls.Identity().Region, nil)
	n.transport = cluster.NewStreamTransport(stream, slog.New(slog.DiscardHandler))
	if n.grpcListener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *raftNodeProcess) start(cfg *raftNodeConfig, peers []raftPeer) error {
	logs, err := raft.NewLogCache(logCacheSize, n.store)
	if err != nil {
		return err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: os.Stderr})
	snapshots, err := raft.NewFileSnapshotStoreWithLogger(cfg.dir, 1, logger)
	if err != nil {
		return err
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raftNodeID(n.index)
	conf.BatchApplyCh = true
	conf.Logger = logger
	if n.raft, err = raft.NewRaft(conf, &countingFSM{}, logs, n.store, snapshots, n.transport); err != nil {
		return err
	}
	var servers []raft.Server
	kmsPeers := map[raft.ServerID]kmspb.KMSClient{}
	for i, p := range peers {
		servers = append(servers, raft.Server{ID: raftNodeID(i), Address: raft.ServerAddress(p.raftAddr)})
		host, _, _ := net.SplitHostPort(p.grpcAddr)
		conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(n.tls.ClientConfig(host))))
		if err != nil {
			return err
		}
		n.conns = append(n.conns, conn)
		kmsPeers[raftNodeID(i)] = kmspb.NewKMSClient(conn)
	}
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("bootstrapping: %w", err)
	}
	n.server = grpc.NewServer(grpc.Creds(credentials.NewTLS(n.tls.ServerConfig())))
	kmspb.RegisterKMSServer(n.server, &raftKMS{
		id: raftNodeID(n.index), raft: n.raft, entry: make([]byte, cfg.size), timeout: cfg.timeout, peers: kmsPeers,
		response: &kmspb.CreateKeyResponse{KeyMetadata: &kmspb.KeyMetadata{KeyId: "00000000-0000-0000-0000-000000000000"}},
	})
	go func() { _ = n.server.Serve(n.grpcListener) }()
	return nil
}

func (n *raftNodeProcess) close() {
	if n.server != nil {
		stopGracefully(n.server, 5*time.Second)
	} else if n.grpcListener != nil {
		_ = n.grpcListener.Close()
	}
	if n.raft != nil {
		_ = n.raft.Shutdown().Error()
	}
	for _, c := range n.conns {
		_ = c.Close()
	}
	if n.transport != nil {
		_ = n.transport.Close()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
}

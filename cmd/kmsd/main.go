// Command kmsd runs one Trent node: the gRPC API, the region's Raft member
// and the node's HSM session. `kmsd -dev` starts a single-node development
// region with the built-in software HSM in ./trent-data.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/trent-kms/trent/node"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// defaultGCPercent: a node's heap is small (key metadata and a bounded key
// cache) while its request path allocates per request, so collecting a
// quarter as often buys ~15% Encrypt throughput for memory it has plenty of.
// GOGC in the environment still wins.
const defaultGCPercent = 400

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stdout, stderr)
}

// serve runs a node until ctx ends. SIGHUP reloads the node's certificate,
// key and CA files at once (they are also reloaded when they change).
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.logLevel}))
	opts.node.Logger = logger
	if opts.pprofAddr != "" {
		go servePprof(opts.pprofAddr, logger)
	}
	// Caught from here on, so a SIGHUP during start-up does not kill the
	// process; it is acted on once the node serves.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	startCtx, cancel := context.WithTimeout(ctx, opts.startTimeout)
	n, err := node.Start(startCtx, opts.node)
	cancel()
	if err != nil {
		logger.Error("start failed", "err", err)
		return 1
	}
	gossip := ""
	if n.Membership() != nil {
		gossip = fmt.Sprintf(" gossip_lan=%s gossip_wan=%s", n.GossipLANAddr(), n.GossipWANAddr())
	}
	fmt.Fprintf(stdout, "ready grpc=%s raft=%s node=%s region=%s%s\n", n.GRPCAddr(), n.RaftAddr(), n.ID(), n.Region(), gossip)

	for ctx.Err() == nil {
		select {
		case <-hup:
			logger.Info("SIGHUP: reloading the TLS certificate")
			_ = n.ReloadTLS() // logged by the node, which keeps its certificate on error
		case <-ctx.Done():
		}
	}
	logger.Info("shutting down")
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	if err := n.Close(closeCtx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	startCtx, cancel := context.WithTimeout(ctx, opts.startTimeout)
	n, err := node.Start(startCtx, opts.node)
	cancel()
	if err != nil {
		logger.Error("start failed", "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "ready grpc=%s raft=%s node=%s region=%s\n", n.GRPCAddr(), n.RaftAddr(), n.ID(), n.Region())

	<-ctx.Done()
	logger.Info("shutting down")
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	if err := n.Close(closeCtx); err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// Command kmsbench measures Trent: it drives a mix of KMS operations against
// a region's endpoints, and measures the baselines those figures are judged
// against on the same machine (a bare gRPC server, raw Raft).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runArgs(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

func runArgs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "baseline-server":
		cfg, err := parseBaselineServerFlags(args[1:], stderr)
		if err != nil {
			return usageError(stderr, err)
		}
		return runBaselineServer(ctx, cfg, stdout, stderr)
	case "raft-baseline":
		cfg, err := parseRaftBaselineFlags(args[1:], stderr)
		if err != nil {
			return usageError(stderr, err)
		}
		return runRaftBaseline(ctx, cfg, stdout, stderr)
	case "raft-server":
		cfg, err := parseRaftServerFlags(args[1:], stderr)
		if err != nil {
			return usageError(stderr, err)
		}
		return runRaftServer(ctx, cfg, stdout, stderr)
	case "raft-node":
		cfg, err := parseRaftNodeFlags(args[1:], stderr)
		if err != nil {
			return usageError(stderr, err)
		}
		return runRaftNode(ctx, cfg, os.Stdin, stdout, stderr)
	case "wait-cluster":
		cfg, err := parseWaitClusterFlags(args[1:], stderr)
		if err != nil {
			return usageError(stderr, err)
		}
		return runWaitCluster(ctx, cfg, stderr)
	}
	cfg, err := parseLoadFlags(args, stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	return runKMSLoad(ctx, cfg, stdout, stderr)
}

func usageError(stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if !errors.As(err, new(reportedError)) {
		fmt.Fprintf(stderr, "kmsbench: %v\n", err)
	}
	return 2
}

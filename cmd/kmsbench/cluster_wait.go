package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
)

// regionFormed reports whether one node's view shows the whole region: a
// leader, and at least the expected number of members.
func regionFormed(s *kmspb.ClusterStatusResponse, nodes int) bool {
	return s.GetLeaderId() != "" && len(s.GetNodes()) >= nodes
}

// waitCluster polls Cluster.Status on every endpoint until each reports the
// region formed. A "ready" line says a node serves, not that it has joined;
// this is what tells a script that the region can take requests everywhere.
func waitCluster(ctx context.Context, cfg *waitClusterConfig) error {
	conns, err := dialEndpoints(cfg.endpoints, 1, cfg.tlsDir)
	if err != nil {
		return err
	}
	defer closeAll(conns)
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	for i, conn := range conns {
		client := kmspb.NewClusterClient(conn)
		// The last answer, reported at the deadline: the poll the deadline
		// cuts short says only that it was cut short.
		var last *kmspb.ClusterStatusResponse
		for {
			s, err := client.Status(ctx, &kmspb.ClusterStatusRequest{})
			if err == nil && regionFormed(s, cfg.nodes) {
				break
			}
			if status.Code(err) == codes.Unimplemented {
				return fmt.Errorf("%s: Cluster.Status is not implemented, cannot tell whether it joined", cfg.endpoints[i])
			}
			if err == nil {
				last = s
			}
			select {
			case <-ctx.Done():
				if last != nil {
					err = fmt.Errorf("sees %d of %d members, leader %q", len(last.GetNodes()), cfg.nodes, last.GetLeaderId())
				}
				return fmt.Errorf("%s: region not formed within %v: %w", cfg.endpoints[i], cfg.timeout, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func runWaitCluster(ctx context.Context, cfg *waitClusterConfig, stderr io.Writer) int {
	if err := waitCluster(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "kmsbench wait-cluster: %v\n", err)
		return 1
	}
	return 0
}

package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/transport/kmspb"
)

// formingCluster reports a region that gains a member every call until it
// has three.
type formingCluster struct {
	kmspb.UnimplementedClusterServer
	calls atomic.Int32
}

func (c *formingCluster) Status(context.Context, *kmspb.ClusterStatusRequest) (*kmspb.ClusterStatusResponse, error) {
	n := min(int(c.calls.Add(1)), 3)
	s := &kmspb.ClusterStatusResponse{LeaderId: "node1"}
	for range n {
		s.Nodes = append(s.Nodes, &kmspb.NodeStatus{Suffrage: "Voter"})
	}
	return s, nil
}

func serveCluster(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestWaitClusterWaitsForEveryMember(t *testing.T) {
	t.Parallel()
	a, b := &formingCluster{}, &formingCluster{}
	addrA := serveCluster(t, func(s *grpc.Server) { kmspb.RegisterClusterServer(s, a) })
	addrB := serveCluster(t, func(s *grpc.Server) { kmspb.RegisterClusterServer(s, b) })
	var stderr bytes.Buffer
	code := runArgs(context.Background(), []string{"wait-cluster", "-endpoints", addrA + "," + addrB,
		"-nodes", "3", "-timeout", "5s"}, &bytes.Buffer{}, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if a.calls.Load() < 3 || b.calls.Load() < 3 {
		t.Errorf("returned after %d and %d polls, before both saw three members", a.calls.Load(), b.calls.Load())
	}

	// The message reports what the region had, even when the deadline
	// cuts a poll short.
	code = runArgs(context.Background(), []string{"wait-cluster", "-endpoints", addrA,
		"-nodes", "4", "-timeout", "500ms"}, &bytes.Buffer{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "sees 3 of 4 members") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestWaitClusterRefusesServerWithoutStatus(t *testing.T) {
	t.Parallel()
	addr := serveCluster(t, func(s *grpc.Server) {})
	var stderr bytes.Buffer
	code := runArgs(context.Background(), []string{"wait-cluster", "-endpoints", addr, "-timeout", "5s"},
		&bytes.Buffer{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "not implemented") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

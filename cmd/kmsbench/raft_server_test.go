package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// TestRaftServerAppliesCreateKeyThroughEveryNode drives the Raft baseline
// behind gRPC+TLS with CreateKey spread over its three endpoints, so two
// thirds of the calls are forwarded: every call succeeds, and a forwarded
// call is never forwarded again.
func TestRaftServerAppliesCreateKeyThroughEveryNode(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)                             // to check that the server cleans up after itself
	t.Cleanup(func() { expectRaftDirsRemoved(t, dir) }) // runs after the server has stopped
	serverDir, clientDir := issueBenchCerts(t, dir)
	endpoints := serveInBackground(t, 30*time.Second, "raft-server", "-nodes", "3", "-tls-dir", serverDir)
	if n := len(strings.Split(endpoints, ",")); n != 3 {
		t.Fatalf("ready line names %d endpoints, want 3: %q", n, endpoints)
	}

	// Each node takes a call; two of the three forward it. A call marked as
	// forwarded is applied only by the leader.
	var applied, refused int
	for _, addr := range strings.Split(endpoints, ",") {
		conn, err := nodetest.DialTLS(addr, clientDir)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		client := kmspb.NewKMSClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.CreateKey(ctx, &kmspb.CreateKeyRequest{}); err != nil {
			t.Errorf("CreateKey through %s: %v", addr, err)
		}
		_, err = client.CreateKey(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), &kmspb.CreateKeyRequest{})
		switch status.Code(err) {
		case codes.OK:
			applied++
		case codes.Unavailable:
			refused++
		default:
			t.Errorf("forwarded CreateKey through %s: %v", addr, err)
		}
	}
	if applied != 1 || refused != 2 {
		t.Errorf("calls marked as forwarded: %d applied, %d refused; want the leader's alone applied", applied, refused)
	}

	r, code, errOut := runLoadJSON(t, "-endpoints", endpoints, "-tls-dir", clientDir, "-op", "create-key", "-concurrency", "6")
	if code != 0 || r.Ops == 0 || r.Errors != 0 {
		t.Errorf("exit %d ops %d errors %d (%s): %s", code, r.Ops, r.Errors, r.FirstError, errOut)
	}
}

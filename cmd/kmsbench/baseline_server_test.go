package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBaselineServerAnswersEncrypt(t *testing.T) {
	t.Parallel()
	ctx, stop := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() { served <- serveBaseline(ctx, "127.0.0.1:0", func(a net.Addr) { addrs <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-served:
		t.Fatalf("server ended before ready: %v", err)
	}

	r, code, stderr := runLoadJSON(t, "-endpoints", addr.String(), "-key-id", "baseline")
	if code != 0 || r.Ops == 0 || r.Errors != 0 {
		t.Fatalf("exit %d ops %d errors %d (%s): %s", code, r.Ops, r.Errors, r.FirstError, stderr)
	}
	// Nothing but Encrypt: a benchmark that needs a key must be given one.
	_, code, stderr = runLoadJSON(t, "-endpoints", addr.String())
	if code != 1 || !strings.Contains(stderr, "Unimplemented") {
		t.Errorf("exit %d, stderr %q; want CreateKey refused", code, stderr)
	}

	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

func TestBaselineServerPrintsReadyLine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := runArgs(ctx, []string{"baseline-server", "-addr", "127.0.0.1:0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	line := stdout.String()
	host, port, err := net.SplitHostPort(strings.TrimSpace(strings.TrimPrefix(line, "ready grpc=")))
	if !strings.HasPrefix(line, "ready grpc=") || err != nil || host != "127.0.0.1" || port == "0" {
		t.Errorf("ready line %q", line)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestRaftBaselineThreeNodes(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // to check that the run cleans up after itself
	var stdout, stderr bytes.Buffer
	code := runArgs(context.Background(), []string{"raft-baseline", "-nodes", "3", "-concurrency", "16",
		"-duration", "1s", "-warmup", "100ms", "-size", "256", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var r jsonResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v: %q", err, stdout.String())
	}
	if r.Label != "raft-baseline" || r.Op != "raft-apply" || r.Concurrency != 16 || r.Size != 256 {
		t.Errorf("result header %+v", r)
	}
	if r.Ops == 0 || r.Rate <= 0 || r.Errors != 0 {
		t.Errorf("ops %d rate %v errors %d (%s)", r.Ops, r.Rate, r.Errors, r.FirstError)
	}
	expectRaftDirsRemoved(t, tmp)
}

// expectRaftDirsRemoved fails t if a Raft baseline left its temporary
// directory in tmp, the TMPDIR it ran with.
func expectRaftDirsRemoved(t *testing.T, tmp string) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(tmp, "kmsbench-raft-*")); len(left) != 0 {
		t.Errorf("left behind %v", left)
	}
}

func TestRaftClusterReplicatesToEveryNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := startRaftCluster(3, dir, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer c.shutdown()
	leader, err := c.waitLeader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const entries = 10
	for range entries {
		if err := leader.Apply([]byte("x"), 0).Error(); err != nil {
			t.Fatal(err)
		}
	}
	// Followers apply once a later message tells them the entries committed.
	deadline := time.Now().Add(5 * time.Second)
	for i, n := range c.nodes {
		for n.fsm.applied.Load() < entries {
			if time.Now().After(deadline) {
				t.Fatalf("node%d applied %d of %d entries", i+1, n.fsm.applied.Load(), entries)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("node%d", i+1), "raft.db")); err != nil {
			t.Errorf("node%d has no bolt store: %v", i+1, err)
		}
	}
}

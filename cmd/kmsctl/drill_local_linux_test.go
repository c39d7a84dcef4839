package main

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeNodeEnv makes the test binary a stand-in kmsd for
// TestLocalActionsKillAndRestartTheRegion.
const fakeNodeEnv = "TRENT_DRILL_FAKE_NODE"

// TestDrillFakeNode is not a test: run with fakeNodeEnv set, it is a
// process that runs until killed, with a command line naming a node's
// data directory, as a dev-cluster.sh node has.
func TestDrillFakeNode(t *testing.T) {
	if os.Getenv(fakeNodeEnv) == "" {
		t.Skip("the stand-in kmsd of TestLocalActionsKillAndRestartTheRegion")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	<-stop
}

// startFakeNode starts the stand-in for node of region in dir as
// dev-cluster.sh would: its pid in DIR/REGION/NODE.pid.
func startFakeNode(t *testing.T, dir, region, node string) *exec.Cmd {
	t.Helper()
	dataDir := filepath.Join(dir, region, node, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDrillFakeNode$", "--", "-data-dir", dataDir)
	cmd.Env = append(os.Environ(), fakeNodeEnv+"=1")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	writePid(t, filepath.Join(dir, region, node+".pid"), cmd.Process.Pid)
	return cmd
}

func writePid(t *testing.T, path string, pid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestLocalActionsKillAndRestartTheRegion: the cut kills the region's
// processes the pid files name, and only those that still are its nodes;
// the restore starts them again with the same command line, environment
// and directory, recording the new pids where dev-cluster.sh looks.
func TestLocalActionsKillAndRestartTheRegion(t *testing.T) {
	dir := t.TempDir()
	n1 := startFakeNode(t, dir, "eu-1", "node1")
	n2 := startFakeNode(t, dir, "eu-1", "node2")
	survivor := startFakeNode(t, dir, "us-1", "node1")
	// A pid file whose process is someone else's (a recycled pid): ours.
	writePid(t, filepath.Join(dir, "eu-1", "node3.pid"), os.Getpid())

	if _, err := newLocalActions(dir, "ap-1", io.Discard); err == nil || !strings.Contains(err.Error(), "no kmsd of region ap-1 runs in") {
		t.Errorf("a region that does not run: %v", err)
	}
	var log strings.Builder
	a, err := newLocalActions(dir, "eu-1", &log)
	if err != nil {
		t.Fatal(err)
	}
	at, err := a.Cut(t.Context())
	if err != nil || at.IsZero() {
		t.Fatalf("Cut: %v, %v", at, err)
	}
	for _, cmd := range []*exec.Cmd{n1, n2} {
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("eu-1 node (pid %d) after the cut: %v, want killed", cmd.Process.Pid, err)
		}
	}
	if err := survivor.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the us-1 node is gone: %v", err)
	}
	if !strings.Contains(log.String(), "killed eu-1/node1 (pid ") || strings.Contains(log.String(), "node3") {
		t.Errorf("log of the cut:\n%s", log.String())
	}

	if err := a.Restore(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, old := range []*exec.Cmd{n1, n2} {
		node := "node" + strconv.Itoa(i+1)
		pid := readPid(t, filepath.Join(dir, "eu-1", node+".pid"))
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		if pid == old.Process.Pid {
			t.Errorf("%s: pid file still names the killed process", node)
		}
		if got := procStrings(pid, "cmdline"); !slices.Equal(got, old.Args) {
			t.Errorf("%s restarted as %q, want %q", node, got, old.Args)
		}
		if env := procStrings(pid, "environ"); !slices.Contains(env, fakeNodeEnv+"=1") {
			t.Errorf("%s restarted without its environment", node)
		}
		if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != dir {
			t.Errorf("%s restarted in %q (%v), want %q", node, cwd, err, dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "eu-1", node+".log")); err != nil {
			t.Errorf("%s logs nowhere: %v", node, err)
		}
	}
	if readPid(t, filepath.Join(dir, "eu-1", "node3.pid")) != os.Getpid() {
		t.Error("the pid file of a process that is not a node was rewritten")
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// localActions cut a region of a scripts/dev-cluster.sh --regions
// deployment by killing its kmsd processes, and restore it by starting
// them again with the command line, environment and directory each had.
// The script itself cannot restore it: its up refuses while any node of
// the DIR runs, and the survivor's do.
type localActions struct {
	dir, region string
	log         io.Writer
	killed      []*localNode
}

// localNode is a kmsd of the deployment as /proc shows it.
type localNode struct {
	name    string // REGION/nodeN, as the script names it
	pid     int
	pidFile string
	logFile string
	argv    []string
	env     []string
	cwd     string
}

// newLocalActions finds the region's nodes now, so that a wrong DIR or a
// deployment that is down is reported before the drill makes any key.
func newLocalActions(dir, region string, log io.Writer) (drillActions, error) {
	nodes, err := findLocalNodes(dir, region)
	if err != nil {
		return nil, usagef("--local: %v", err)
	}
	if len(nodes) == 0 {
		return nil, usagef("--local: no kmsd of region %s runs in %s (no live process in %s); start the deployment with scripts/dev-cluster.sh up %s --regions ...",
			region, dir, filepath.Join(dir, region, "node*.pid"), dir)
	}
	return &localActions{dir: dir, region: region, log: log}, nil
}

// findLocalNodes reads the pid files the script keeps, DIR/REGION/nodeN.pid,
// and keeps the processes that are still that node's kmsd: a pid whose
// command line does not name the node's data directory was recycled, and
// is someone else's.
func findLocalNodes(dir, region string) ([]*localNode, error) {
	rdir := filepath.Join(dir, region)
	pidFiles, err := filepath.Glob(filepath.Join(rdir, "node*.pid"))
	if err != nil {
		return nil, err
	}
	var nodes []*localNode
	for _, pidFile := range pidFiles {
		name := strings.TrimSuffix(filepath.Base(pidFile), ".pid")
		text, err := os.ReadFile(pidFile)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(text)))
		if err != nil || pid <= 0 {
			continue
		}
		argv := procStrings(pid, "cmdline")
		if !slices.Contains(argv, filepath.Join(rdir, name, "data")) {
			continue // gone, a zombie (empty command line), or recycled
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			return nil, fmt.Errorf("%s/%s (pid %d): %w", region, name, pid, err)
		}
		nodes = append(nodes, &localNode{
			name: region + "/" + name, pid: pid, pidFile: pidFile,
			logFile: filepath.Join(rdir, name+".log"),
			argv:    argv, env: procStrings(pid, "environ"), cwd: cwd,
		})
	}
	return nodes, nil
}

// procStrings reads a NUL-separated /proc file of pid, nil if it cannot.
func procStrings(pid int, file string) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil || len(data) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// Cut kills every kmsd of the region at once, with SIGKILL: a region lost
// to a power cut gets no chance to hand over leadership or flush anything.
func (a *localActions) Cut(ctx context.Context) (time.Time, error) {
	nodes, err := findLocalNodes(a.dir, a.region)
	if err != nil {
		return time.Time{}, err
	}
	if len(nodes) == 0 {
		return time.Time{}, fmt.Errorf("no kmsd of region %s runs in %s", a.region, a.dir)
	}
	for _, n := range nodes {
		if err := syscall.Kill(n.pid, syscall.SIGKILL); err != nil {
			return time.Time{}, fmt.Errorf("kill %s (pid %d): %w", n.name, n.pid, err)
		}
		a.killed = append(a.killed, n)
	}
	cutAt := time.Now()
	for _, n := range nodes {
		fmt.Fprintf(a.log, "drill: cut: killed %s (pid %d)\n", n.name, n.pid)
	}
	fmt.Fprintf(a.log, "drill: cut: if the drill is interrupted, bring the deployment back with: scripts/dev-cluster.sh down %s && scripts/dev-cluster.sh up %s --regions %s\n",
		a.dir, a.dir, a.regionsList())
	// Their ports must be free before they start again; a killed process
	// that no one has reaped yet (a zombie) has closed them already.
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for procStrings(n.pid, "cmdline") != nil {
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("%s (pid %d) still runs 10s after SIGKILL", n.name, n.pid)
			}
			select {
			case <-ctx.Done():
				return time.Time{}, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return cutAt, nil
}

// regionsList is the --regions the deployment was started with.
func (a *localActions) regionsList() string {
	if data, err := os.ReadFile(filepath.Join(a.dir, "regions")); err == nil {
		return strings.TrimSpace(string(data))
	}
	return "..."
}

// Restore starts each killed node again as it ran, in its own session so
// that it outlives kmsctl (and a Ctrl-C to it), appending to its log and
// recording its pid where the script looks, so that dev-cluster.sh down
// stops it.
func (a *localActions) Restore(ctx context.Context) error {
	var errs []error
	for _, n := range a.killed {
		if err := n.start(); err != nil {
			errs = append(errs, fmt.Errorf("start %s again: %w", n.name, err))
			continue
		}
		fmt.Fprintf(a.log, "drill: restore: started %s again (pid %d)\n", n.name, n.pid)
	}
	a.killed = nil
	return errors.Join(errs...)
}

func (n *localNode) start() error {
	if len(n.argv) == 0 {
		return errors.New("its command line is unknown")
	}
	logf, err := os.OpenFile(n.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(n.argv[0], n.argv[1:]...)
	cmd.Env = n.env
	cmd.Dir = n.cwd
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.pid = cmd.Process.Pid
	if err := os.WriteFile(n.pidFile, []byte(strconv.Itoa(n.pid)+"\n"), 0o600); err != nil {
		return err
	}
	return cmd.Process.Release()
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trent-kms/trent/transport/pki"
)

// raftServerStartup bounds the time from starting the nodes to one of them
// leading.
const raftServerStartup = 30 * time.Second

// raftNodeChild is a raft-node process and the pipes to it.
type raftNodeChild struct {
	index int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // its startup lines (listening, serving)
	done  chan struct{} // closed once it has exited; err is set then
	err   error
}

// leadership is news from a child: it started or stopped leading.
type leadership struct {
	index   int
	leading bool
}

// runRaftServer starts one raft-node process per node, as a Trent region
// runs one kmsd per node, connects them into one Raft cluster, and prints
// "ready grpc=ADDR,..." once one of them leads. It runs until ctx
// ends, and fails as soon as a node exits.
func runRaftServer(ctx context.Context, cfg *raftServerConfig, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "kmsbench raft-server: "+format+"\n", args...)
	}
	// Every node loads the same certificate: check it once, before anything
	// is created or started.
	if _, err := loadCertificate(cfg.tlsDir, pki.NodeCertFile, pki.NodeKeyFile); err != nil {
		logf("%v", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		logf("%v", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kmsbench-raft-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(dir)

	var children []*raftNodeChild
	defer func() { stopRaftNodes(children, 10*time.Second) }()
	news := make(chan leadership, 16)
	exited := make(chan *raftNodeChild, cfg.nodes)
	for i := range cfg.nodes {
		args := append([]string{"raft-node", "-index", strconv.Itoa(i), "-dir", filepath.Join(dir, fmt.Sprintf("node%d", i+1))},
			cfg.args()...)
		child, err := startRaftNodeChild(exe, i, stderr, news, exited, args...)
		if err != nil {
			logf("starting node %d: %v", i+1, err)
			return 1
		}
		children = append(children, child)
	}

	endpoints, err := connectRaftNodes(ctx, children, news, exited)
	if err != nil {
		if ctx.Err() != nil {
			logf("interrupted before the nodes were ready")
		} else {
			logf("%v", err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "ready grpc=%s\n", strings.Join(endpoints, ","))
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-news: // leadership may move; the load driver sees it
		case c := <-exited:
			logf("node %d exited: %v", c.index+1, c.err)
			return 1
		}
	}
}

// connectRaftNodes tells every child its peers and returns the gRPC
// endpoints once all serve and one leads.
func connectRaftNodes(ctx context.Context, children []*raftNodeChild, news <-chan leadership, exited <-chan *raftNodeChild) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, raftServerStartup)
	defer cancel()
	// await returns the child's next startup line, which must start with want.
	await := func(c *raftNodeChild, want string) (string, error) {
		select {
		case line := <-c.lines:
			if !strings.HasPrefix(line, want) {
				return "", fmt.Errorf("node %d said %q, expected %q", c.index+1, line, want)
			}
			return line, nil
		case <-c.done:
			return "", fmt.Errorf("node %d exited before saying %q: %v", c.index+1, want, c.err)
		case <-ctx.Done():
			return "", fmt.Errorf("node %d did not say %q within %v", c.index+1, want, raftServerStartup)
		}
	}

	peers := []string{nodePeers}
	var endpoints []string
	for _, c := range children {
		line, err := await(c, nodeListening)
		if err != nil {
			return nil, err
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, fmt.Errorf("node %d said %q, expected %q RAFT_ADDR GRPC_ADDR", c.index+1, line, nodeListening)
		}
		peers = append(peers, fields[1]+","+fields[2])
		endpoints = append(endpoints, fields[2])
	}
	for _, c := range children {
		if _, err := fmt.Fprintln(c.stdin, strings.Join(peers, " ")); err != nil {
			return nil, fmt.Errorf("node %d: sending its peers: %w", c.index+1, err)
		}
	}
	for _, c := range children {
		if _, err := await(c, nodeServing); err != nil {
			return nil, err
		}
	}
	leading := map[int]bool{}
	for {
		select {
		case n := <-news:
			leading[n.index] = n.leading
		case c := <-exited:
			return nil, fmt.Errorf("node %d exited: %v", c.index+1, c.err)
		case <-ctx.Done():
			return nil, fmt.Errorf("no node took the lead within %v", raftServerStartup)
		}
		for drained := false; !drained; { // a leader that already stepped down says so next
			select {
			case n := <-news:
				leading[n.index] = n.leading
			default:
				drained = true
			}
		}
		for _, l := range leading {
			if l {
				return endpoints, nil
			}
		}
	}
}

// startRaftNodeChild starts a raft-node process. Its leadership news goes
// to news, and the child itself to exited once it has exited.
func startRaftNodeChild(exe string, index int, stderr io.Writer, news chan<- leadership, exited chan<- *raftNodeChild, args ...string) (*raftNodeChild, error) {
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Startup says two lines; any other is dropped, never waited for.
	c := &raftNodeChild{index: index, cmd: cmd, stdin: stdin, lines: make(chan string, 2), done: make(chan struct{})}
	go func() {
		scan := bufio.NewScanner(out)
		for scan.Scan() {
			switch line := scan.Text(); line {
			case nodeLeading, nodeFollowing:
				select {
				case news <- leadership{index, line == nodeLeading}:
				default: // nobody listens any more
				}
			default:
				select {
				case c.lines <- line:
				default:
				}
			}
		}
		// Wait only once stdout is read to its end, as exec requires.
		c.err = cmd.Wait()
		close(c.done)
		exited <- c // buffered for every child
	}()
	return c, nil
}

// stopRaftNodes closes the children's stdin, which stops them, and kills
// those still running after grace.
func stopRaftNodes(children []*raftNodeChild, grace time.Duration) {
	for _, c := range children {
		_ = c.stdin.Close()
	}
	timeout := time.NewTimer(grace)
	defer timeout.Stop()
	killed := false
	for _, c := range children {
		if !killed {
			select {
			case <-c.done:
				continue
			case <-timeout.C:
				killed = true
				for _, k := range children {
					_ = k.cmd.Process.Kill()
				}
			}
		}
		<-c.done
	}
}

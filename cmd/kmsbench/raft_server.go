package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
)

// raftKMS answers CreateKey with one raw Raft apply of a fixed entry, and
// nothing else: the path a Trent write takes (a gRPC+TLS call to any node, a
// follower forwarding it to the leader over gRPC+TLS, a Raft commit over
// TLS) without Trent's own work (HSM, state machine, audit, authorization).
type raftKMS struct {
	kmspb.UnimplementedKMSServer
	id       raft.ServerID
	raft     *raft.Raft
	entry    []byte
	timeout  time.Duration
	peers    map[raft.ServerID]kmspb.KMSClient // complete before the server serves
	response *kmspb.CreateKeyResponse
}

// forwardedKey marks a call one node forwarded to another: its receiver
// applies it or refuses it, and never forwards it again, as Trent's
// Internal.Apply does.
const forwardedKey = "kmsbench-forwarded"

func (s *raftKMS) CreateKey(ctx context.Context, req *kmspb.CreateKeyRequest) (*kmspb.CreateKeyResponse, error) {
	if s.raft.State() == raft.Leader {
		if err := s.raft.Apply(s.entry, s.timeout).Error(); err != nil {
			return nil, status.Error(codes.Unavailable, err.Error())
		}
		return s.response, nil
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(forwardedKey)) > 0 {
		return nil, status.Error(codes.Unavailable, "forwarded to a node that no longer leads")
	}
	_, leaderID := s.raft.LeaderWithID()
	leader := s.peers[leaderID]
	if leader == nil || leaderID == s.id {
		return nil, status.Error(codes.Unavailable, "no leader known")
	}
	return leader.CreateKey(metadata.AppendToOutgoingContext(ctx, forwardedKey, "1"), req)
}

// raftNodeChild is a raft-node process and the pipes to it.
type raftNodeChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string   // its stdout but for leadership news, closed when it exits
	read  chan struct{} // closed once its stdout is read to the end
}

// runRaftServer starts one raft-node process per node, as a Trent region
// runs one kmsd per node, connects them into one Raft cluster, and prints
// "ready grpc=ADDR,..." once one of them leads. It stops them when ctx ends.
func runRaftServer(ctx context.Context, cfg *raftServerConfig, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "kmsbench raft-server: "+format+"\n", args...)
	}
	dir, err := os.MkdirTemp("", "kmsbench-raft-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		logf("%v", err)
		return 1
	}
	var children []*raftNodeChild
	defer func() { stopRaftNodes(children, 10*time.Second) }()
	led := make(chan struct{}, 1)
	for i := range cfg.nodes {
		child, err := startRaftNodeChild(exe, stderr, led, "raft-node", "-index", strconv.Itoa(i), "-nodes", strconv.Itoa(cfg.nodes),
			"-dir", filepath.Join(dir, fmt.Sprintf("node%d", i+1)), "-tls-dir", cfg.tlsDir,
			"-size", strconv.Itoa(cfg.size), "-timeout", cfg.timeout.String())
		if err != nil {
			logf("%v", err)
			return 1
		}
		children = append(children, child)
	}

	deadline := time.After(30 * time.Second)
	peers := []string{nodePeers}
	var endpoints []string
	for i, child := range children {
		line, err := child.next(ctx, deadline, nodeListening)
		if err != nil {
			logf("node %d: %v", i+1, err)
			return 1
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			logf("node %d: bad line %q", i+1, line)
			return 1
		}
		peers = append(peers, fields[1]+","+fields[2])
		endpoints = append(endpoints, fields[2])
	}
	for _, child := range children {
		if _, err := fmt.Fprintln(child.stdin, strings.Join(peers, " ")); err != nil {
			logf("%v", err)
			return 1
		}
	}
	for i, child := range children {
		if _, err := child.next(ctx, deadline, nodeServing); err != nil {
			logf("node %d: %v", i+1, err)
			return 1
		}
	}
	select {
	case <-led:
	case <-deadline:
		logf("no node took the lead in time")
		return 1
	case <-ctx.Done():
		return 0
	}
	fmt.Fprintf(stdout, "ready grpc=%s\n", strings.Join(endpoints, ","))
	<-ctx.Done()
	return 0
}

// startRaftNodeChild starts a raft-node process; a signal goes to led
// (without waiting) each time it says it leads.
func startRaftNodeChild(exe string, stderr io.Writer, led chan<- struct{}, args ...string) (*raftNodeChild, error) {
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
	// Startup says two lines; later ones are dropped, never waited for.
	child := &raftNodeChild{cmd: cmd, stdin: stdin, lines: make(chan string, 2), read: make(chan struct{})}
	go func() {
		defer close(child.read)
		defer close(child.lines)
		scan := bufio.NewScanner(out)
		for scan.Scan() {
			ch := child.lines
			if scan.Text() == nodeLeading {
				ch = nil
				select {
				case led <- struct{}{}:
				default:
				}
			}
			select {
			case ch <- scan.Text():
			default:
			}
		}
	}()
	return child, nil
}

// next returns the child's next line, which must start with want.
func (c *raftNodeChild) next(ctx context.Context, deadline <-chan time.Time, want string) (string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", errors.New("exited")
		}
		if !strings.HasPrefix(line, want) {
			return "", fmt.Errorf("said %q, expected %q", line, want)
		}
		return line, nil
	case <-deadline:
		return "", fmt.Errorf("no %q line in time", want)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stopRaftNodes closes the children's stdin, which stops them, and kills any
// still running after grace.
func stopRaftNodes(children []*raftNodeChild, grace time.Duration) {
	for _, c := range children {
		_ = c.stdin.Close()
	}
	timeout := time.After(grace)
	for _, c := range children {
		select {
		case <-c.read: // it exited, closing its stdout
		case <-timeout:
			_ = c.cmd.Process.Kill()
			<-c.read
		}
		_ = c.cmd.Wait()
	}
}

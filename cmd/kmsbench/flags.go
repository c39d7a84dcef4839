package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

const usageText = `Usage:
  kmsbench [flags]                 drive an operation mix against Trent endpoints
  kmsbench baseline-server [flags] bare gRPC KMS server whose Encrypt does nothing
  kmsbench raft-baseline [flags]   raw hashicorp/raft apply rate on this machine, nodes in one process
  kmsbench raft-server [flags]     Raft nodes, one process each (Raft over mutual TLS), behind gRPC+TLS
                                   servers whose CreateKey is one apply (followers forward to the
                                   leader); drive it with -op create-key
  kmsbench raft-node [flags]       one node of raft-server, which starts it
  kmsbench wait-cluster [flags]    wait until every endpoint reports a full region with a leader

Run "kmsbench SUBCOMMAND -h" for a subcommand's flags.

Results count successful requests only: ops, rate and latencies leave errors
out, so a server that fails fast cannot look fast. Requests are counted when
they complete inside the measured window, after the warmup.

Flags of the load driver:
`

// reportedError is an error the flag package has already printed.
type reportedError struct{ error }

func (e reportedError) Unwrap() error { return e.error }

// loadConfig is what the load driver runs.
type loadConfig struct {
	endpoints        []string
	connsPerEndpoint int
	op               string
	mix              []weightedOp // one entry of weight 1 unless op is "mix"
	concurrency      int
	duration         time.Duration
	warmup           time.Duration
	timeout          time.Duration
	size             int
	keyID            string
	protectionLevel  string
	jsonOutput       bool
	label            string
	tlsDir           string
}

type weightedOp struct {
	name   string
	weight int
}

func parseLoadFlags(args []string, stderr io.Writer) (*loadConfig, error) {
	var cfg loadConfig
	var endpoints, mix string
	fs := flag.NewFlagSet("kmsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&endpoints, "endpoints", "", "comma-separated gRPC `host:port` list; workers are spread round-robin over them")
	fs.IntVar(&cfg.connsPerEndpoint, "conns-per-endpoint", 2, "gRPC connections opened to each endpoint")
	fs.StringVar(&cfg.op, "op", "encrypt", "operation: "+strings.Join(opNames, "|")+"|mix")
	fs.StringVar(&mix, "mix", "", "weights for -op mix, e.g. encrypt=80,decrypt=20")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "concurrent requests (one worker each)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "time run before measuring, not counted")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "deadline of each request; a request past it counts as an error")
	fs.IntVar(&cfg.size, "size", 32, "plaintext bytes for encrypt and decrypt")
	fs.StringVar(&cfg.keyID, "key-id", "", "key to use (default: create one with CreateKey first)")
	fs.StringVar(&cfg.protectionLevel, "protection-level", "SOFTWARE", "SOFTWARE|HSM, for keys the benchmark creates")
	fs.BoolVar(&cfg.jsonOutput, "json", false, "print the result as one JSON object")
	fs.StringVar(&cfg.label, "label", "kmsbench", "first field of the result line")
	fs.StringVar(&cfg.tlsDir, "tls-dir", defaultTLSDir(), tlsDirUsage)
	if err := parseFlagsOnly(fs, args); err != nil {
		return nil, err
	}
	cfg.endpoints = splitList(endpoints)
	if len(cfg.endpoints) == 0 {
		return nil, errors.New("-endpoints is required")
	}
	switch {
	case cfg.op == "mix":
		ops, err := parseMix(mix)
		if err != nil {
			return nil, fmt.Errorf("-mix: %w", err)
		}
		cfg.mix = ops
	case mix != "":
		return nil, errors.New("-mix needs -op mix")
	case slices.Contains(opNames, cfg.op):
		cfg.mix = []weightedOp{{name: cfg.op, weight: 1}}
	default:
		return nil, fmt.Errorf("-op %q: want one of %s or mix", cfg.op, strings.Join(opNames, ", "))
	}
	cfg.protectionLevel = strings.ToUpper(cfg.protectionLevel)
	if cfg.protectionLevel != "SOFTWARE" && cfg.protectionLevel != "HSM" {
		return nil, fmt.Errorf("-protection-level %q: want SOFTWARE or HSM", cfg.protectionLevel)
	}
	if err := checkLoadShape(cfg.concurrency, cfg.duration, cfg.warmup, cfg.timeout); err != nil {
		return nil, err
	}
	if cfg.connsPerEndpoint < 1 {
		return nil, errors.New("-conns-per-endpoint must be at least 1")
	}
	if cfg.size < 0 || cfg.size > maxPlaintextSize {
		return nil, fmt.Errorf("-size must be in 0..%d", maxPlaintextSize)
	}
	return &cfg, nil
}

// maxPlaintextSize is AWS KMS's Encrypt limit, which Trent follows.
const maxPlaintextSize = 4096

func checkLoadShape(concurrency int, duration, warmup, timeout time.Duration) error {
	switch {
	case concurrency < 1:
		return errors.New("-concurrency must be at least 1")
	case duration <= 0:
		return errors.New("-duration must be positive")
	case warmup < 0:
		return errors.New("-warmup must not be negative")
	case timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	return nil
}

func parseMix(s string) ([]weightedOp, error) {
	if s == "" {
		return nil, errors.New("empty; want e.g. encrypt=80,decrypt=20")
	}
	var ops []weightedOp
	for part := range strings.SplitSeq(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want OP=WEIGHT", part)
		}
		if !slices.Contains(opNames, name) {
			return nil, fmt.Errorf("unknown operation %q; want one of %s", name, strings.Join(opNames, ", "))
		}
		w, err := strconv.Atoi(weight)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("%q: weight must be a non-negative integer", part)
		}
		if slices.ContainsFunc(ops, func(o weightedOp) bool { return o.name == name }) {
			return nil, fmt.Errorf("%s given twice", name)
		}
		if w > 0 {
			ops = append(ops, weightedOp{name: name, weight: w})
		}
	}
	if len(ops) == 0 {
		return nil, errors.New("all weights are zero")
	}
	return ops, nil
}

func formatMix(ops []weightedOp) string {
	parts := make([]string, len(ops))
	for i, o := range ops {
		parts[i] = o.name + "=" + strconv.Itoa(o.weight)
	}
	return strings.Join(parts, ",")
}

type baselineServerConfig struct {
	addr   string
	tlsDir string
}

func parseBaselineServerFlags(args []string, stderr io.Writer) (*baselineServerConfig, error) {
	var cfg baselineServerConfig
	fs := flag.NewFlagSet("kmsbench baseline-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "gRPC listen `host:port` (port 0 picks a free one)")
	fs.StringVar(&cfg.tlsDir, "tls-dir", "", "serve mutual TLS 1.3 with the node certificate in `DIR` (node.crt, node.key, ca.crt; kmsctl ca issue-node), as Trent does; default plaintext")
	if err := parseFlagsOnly(fs, args); err != nil {
		return nil, err
	}
	return &cfg, nil
}

type raftBaselineConfig struct {
	nodes       int
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	timeout     time.Duration
	size        int
	jsonOutput  bool
	label       string
}

func parseRaftBaselineFlags(args []string, stderr io.Writer) (*raftBaselineConfig, error) {
	var cfg raftBaselineConfig
	fs := flag.NewFlagSet("kmsbench raft-baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.nodes, "nodes", 3, "Raft voters, all in this process")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "concurrent Apply calls")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "time run before measuring, not counted")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "deadline of each Apply")
	fs.IntVar(&cfg.size, "size", 256, "bytes per log entry")
	fs.BoolVar(&cfg.jsonOutput, "json", false, "print the result as one JSON object")
	fs.StringVar(&cfg.label, "label", "raft-baseline", "first field of the result line")
	if err := parseFlagsOnly(fs, args); err != nil {
		return nil, err
	}
	if err := checkRaftShape(cfg.nodes, cfg.size); err != nil {
		return nil, err
	}
	if err := checkLoadShape(cfg.concurrency, cfg.duration, cfg.warmup, cfg.timeout); err != nil {
		return nil, err
	}
	return &cfg, nil
}

type waitClusterConfig struct {
	endpoints []string
	nodes     int
	timeout   time.Duration
	tlsDir    string
}

func parseWaitClusterFlags(args []string, stderr io.Writer) (*waitClusterConfig, error) {
	var cfg waitClusterConfig
	var endpoints string
	fs := flag.NewFlagSet("kmsbench wait-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&endpoints, "endpoints", "", "comma-separated gRPC `host:port` list of the region's nodes")
	fs.IntVar(&cfg.nodes, "nodes", 0, "members the region must report (default: the number of endpoints)")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "give up after this long")
	fs.StringVar(&cfg.tlsDir, "tls-dir", defaultTLSDir(), tlsDirUsage+" (Cluster.Status needs role admin)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return nil, err
	}
	cfg.endpoints = splitList(endpoints)
	if len(cfg.endpoints) == 0 {
		return nil, errors.New("-endpoints is required")
	}
	if cfg.nodes == 0 {
		cfg.nodes = len(cfg.endpoints)
	}
	if cfg.timeout <= 0 {
		return nil, errors.New("-timeout must be positive")
	}
	return &cfg, nil
}

func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// raftServeFlags are raft-server's flags, which it passes on to each of its
// raft-node processes.
type raftServeFlags struct {
	nodes   int
	size    int
	timeout time.Duration
	tlsDir  string
}

func (f *raftServeFlags) register(fs *flag.FlagSet, nodesUsage string) {
	fs.IntVar(&f.nodes, "nodes", 3, nodesUsage)
	fs.IntVar(&f.size, "size", 256, "bytes per log entry")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline of each Apply")
	fs.StringVar(&f.tlsDir, "tls-dir", "", "node certificate `DIR` (node.crt, node.key, ca.crt; kmsctl ca issue-node) the servers present and followers forward with (required)")
}

func (f *raftServeFlags) check() error {
	if err := checkRaftShape(f.nodes, f.size); err != nil {
		return err
	}
	if f.timeout <= 0 {
		return errors.New("-timeout must be positive")
	}
	if f.tlsDir == "" {
		return errors.New("-tls-dir is required: the servers serve mutual TLS, as Trent's nodes do")
	}
	return nil
}

// args are the flags as a raft-node's command line.
func (f *raftServeFlags) args() []string {
	return []string{"-nodes", strconv.Itoa(f.nodes), "-size", strconv.Itoa(f.size),
		"-timeout", f.timeout.String(), "-tls-dir", f.tlsDir}
}

type raftServerConfig struct {
	raftServeFlags
}

func parseRaftServerFlags(args []string, stderr io.Writer) (*raftServerConfig, error) {
	var cfg raftServerConfig
	fs := flag.NewFlagSet("kmsbench raft-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs, "Raft voters, each a process of its own behind its own gRPC server")
	if err := parseFlagsOnly(fs, args); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.nodes > maxRaftServerNodes {
		return nil, fmt.Errorf("-nodes must be at most %d: each node is a process", maxRaftServerNodes)
	}
	return &cfg, nil
}

// maxRaftServerNodes caps raft-server's -nodes.
const maxRaftServerNodes = 15

// raftNodeConfig is one raft-node process, which raft-server starts.
type raftNodeConfig struct {
	raftServeFlags
	index int // from 0
	dir   string
}

func parseRaftNodeFlags(args []string, stderr io.Writer) (*raftNodeConfig, error) {
	var cfg raftNodeConfig
	fs := flag.NewFlagSet("kmsbench raft-node (started by raft-server)", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs, "Raft voters in the cluster")
	fs.IntVar(&cfg.index, "index", 0, "this node's position among -nodes, from 0")
	fs.StringVar(&cfg.dir, "dir", "", "`DIR` of this node's Raft log and snapshots (required)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return nil, err
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.index < 0 || cfg.index >= cfg.nodes {
		return nil, fmt.Errorf("-index %d: must be from 0 to -nodes minus 1", cfg.index)
	}
	if cfg.dir == "" {
		return nil, errors.New("-dir is required")
	}
	return &cfg, nil
}

// parseFlagsOnly parses args into fs and refuses positional arguments:
// every subcommand takes flags only.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return reportedError{err}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// checkRaftShape checks the flags the Raft baselines share.
func checkRaftShape(nodes, size int) error {
	if nodes < 1 {
		return errors.New("-nodes must be at least 1")
	}
	if size < 0 {
		return errors.New("-size must not be negative")
	}
	return nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/transport"
)

// defaultAuditSyncInterval is how often kmsd syncs its audit log unless told
// otherwise. Each record is written to the log before its request is
// answered, so it survives kmsd crashing (Vault's file audit device gives the
// same, and never syncs). Syncing before every answer as well cost Encrypt
// about 40% of its rate (BENCHMARKS.md); -audit-sync-interval 0 does that,
// for records that must survive a power loss too.
const defaultAuditSyncInterval = 20 * time.Millisecond

type options struct {
	node         node.Config
	dev          bool
	logLevel     slog.Level
	startTimeout time.Duration
	pprofAddr    string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	c := &o.node
	fs := flag.NewFlagSet("kmsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.DataDir, "data-dir", "./trent-data", "data directory (Raft log, snapshots, software HSM store)")
	fs.StringVar(&c.NodeID, "node-id", "", "node id; must match the certificate's (default: the certificate's; with -dev generated on first start and kept in the data dir)")
	fs.StringVar(&c.Region, "region", "", "region name; must match the certificate's (default: the certificate's; with -dev \"local\")")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:7420", "gRPC listen address (port 0 picks a free port and keeps it across restarts)")
	fs.StringVar(&c.RaftAddr, "raft-addr", "127.0.0.1:7421", "Raft listen address (port 0 picks a free port and keeps it across restarts)")
	fs.BoolVar(&c.Bootstrap, "bootstrap", false, "start a new region with this node as its first voter (ignored once the data dir has state)")
	fs.StringVar(&c.Join, "join", "", "gRPC address of any member of the region to join (ignored once the data dir has state)")
	fs.StringVar(&c.JoinSecretFile, "join-secret-file", "", "file with the region's join secret (bootstrap creates it if missing; default DATA_DIR/join-secret)")
	fs.StringVar(&c.AuditLogPath, "audit-log", "", "`PATH` of the audit log: one hash-chained record per client request (default DATA_DIR/audit.log; check it with kmsctl audit verify)")
	fs.DurationVar(&c.AuditSyncInterval, "audit-sync-interval", defaultAuditSyncInterval, "answer a request once its audit record is written to the log, and sync the log to disk in the background at most this often (`DURATION`, up to 10s): the record survives a crash of kmsd, but a power loss or kernel crash may lose the records written since the last completed sync (the last interval's, and those of a sync in flight). 0: answer only once the record is synced (fdatasync, group commit), at a cost in speed")
	fs.StringVar(&c.HSM, "hsm", node.HSMSoft, "HSM backend: soft (built-in software HSM) or pkcs11")
	fs.StringVar(&c.UnsealSecretFile, "unseal-secret-file", "", "unseal secret of the software HSM (default DATA_DIR/unseal-secret, created on first start)")
	fs.StringVar(&c.PKCS11Library, "pkcs11-lib", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module path")
	fs.StringVar(&c.PKCS11Label, "pkcs11-token-label", "", "PKCS#11 token label")
	fs.StringVar(&c.PKCS11PINFile, "pkcs11-pin-file", "", "file holding the PKCS#11 user PIN")
	fs.StringVar(&c.TLSCertFile, "tls-cert", "", "`FILE` with this node's certificate (PEM, from kmsctl ca issue-node); reloaded when it changes and on SIGHUP")
	fs.StringVar(&c.TLSKeyFile, "tls-key", "", "`FILE` with this node's private key (PEM)")
	fs.StringVar(&c.TLSCAFile, "tls-ca", "", "`FILE` with the cluster CA certificates to trust (PEM)")
	fs.Func("rate-limit-crypto", "per-principal limit on cryptographic requests (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateRandom) on this node: `RATE[:BURST]` requests per second and bucket size (BURST defaults to RATE, rounded up), or unlimited (default)",
		func(s string) (err error) { c.RateLimits.Crypto, err = transport.ParseRateLimit(s); return err })
	fs.Func("rate-limit-management", "per-principal limit on the other KMS requests on this node: `RATE[:BURST]`, or unlimited (default)",
		func(s string) (err error) { c.RateLimits.Management, err = transport.ParseRateLimit(s); return err })
	fs.Func("rate-limit-override", "`PRINCIPAL:CLASS=RATE[:BURST]` or PRINCIPAL:CLASS=unlimited, CLASS crypto or management: replaces that limit for one principal (repeat the flag, or separate with commas)",
		func(s string) error {
			for spec := range strings.SplitSeq(s, ",") {
				if err := c.RateLimits.ParseOverride(spec); err != nil {
					return err
				}
			}
			return nil
		})
	var g node.GossipConfig
	gossipOn := false
	gossipAddr := func(dst *string) func(string) error {
		return func(s string) error { *dst, gossipOn = s, true; return nil }
	}
	seeds := func(dst *[]string) func(string) error {
		return func(s string) error {
			for seed := range strings.SplitSeq(s, ",") {
				if seed = strings.TrimSpace(seed); seed != "" {
					*dst = append(*dst, seed)
				}
			}
			gossipOn = true
			return nil
		}
	}
	fs.Func("gossip-lan", "`IP:PORT` of the region's gossip pool (TCP and UDP; port 0 picks a free port and keeps it across restarts); turns gossip on (default with gossip: the -grpc-addr host, port 7422)", gossipAddr(&g.LANBind))
	fs.Func("gossip-wan", "`IP:PORT` of the gossip pool of all regions; turns gossip on (default with gossip: the LAN host, the LAN port + 1)", gossipAddr(&g.WANBind))
	fs.StringVar(&g.LANAdvertise, "gossip-lan-advertise", "", "`IP:PORT` region peers should dial for the LAN pool instead of -gossip-lan (NAT, wildcard bind)")
	fs.StringVar(&g.WANAdvertise, "gossip-wan-advertise", "", "`IP:PORT` other regions should dial for the WAN pool instead of -gossip-wan")
	fs.StringVar(&g.KeyFile, "gossip-key-file", "", "`FILE` with the gossip keyring shared by every node: base64 32-byte keys, one a line, the first encrypts (default DATA_DIR/gossip-key; created by -bootstrap and -dev when missing)")
	fs.Func("retry-join", "`HOST:PORT` of a region peer's LAN gossip pool (repeat the flag, or separate with commas); turns gossip on. With an empty data dir and neither -bootstrap nor -join, the node joins its region through it, with the join secret", seeds(&g.RetryJoin))
	fs.Func("wan-join", "`HOST:PORT` of any region's node's WAN gossip pool (repeat, or separate with commas); turns gossip on. One node of a region is enough", seeds(&g.WANJoin))
	fs.IntVar(&g.Voters, "voters", node.DefaultVoters, "with gossip: the most voters the leader admits; later nodes join as nonvoters and are promoted when a voter seat frees up (set it alike on every node)")
	fs.DurationVar(&g.DeadServerCleanupAfter, "dead-server-cleanup-after", node.DefaultDeadServerCleanupAfter, "with gossip: the leader removes a server gossip has seen failed this long from the region, if the healthy voters stay a quorum")
	fs.BoolVar(&c.StrictReads, "strict-reads", false, "confirm leadership with a quorum round for every batch of reads, and fetch the read index from the leader for every batch on a follower, instead of holding read leases (slower; assumes nothing about clock rates)")
	fs.BoolVar(&o.dev, "dev", false, "development mode: software HSM, a CA and certificates of its own in DATA_DIR/tls (admin client certificate in DATA_DIR/tls/admin), bootstrap a single-node region if the data dir is empty")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); off by default")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&o.startTimeout, "start-timeout", 60*time.Second, "how long to wait for the node to form or join its region")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fail := func(err error) (options, error) {
		fmt.Fprintln(stderr, "kmsd:", err)
		return o, err
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return fail(fmt.Errorf("-log-level: %w", err))
	}
	if gossipOn {
		c.Gossip = &g
	} else {
		for _, name := range []string{"gossip-lan-advertise", "gossip-wan-advertise", "gossip-key-file", "voters", "dead-server-cleanup-after"} {
			if isSet(fs, name) {
				return fail(fmt.Errorf("-%s needs gossip: add -gossip-lan or -retry-join", name))
			}
		}
	}
	if o.dev {
		if c.HSM != node.HSMSoft {
			return fail(errors.New("-dev uses the software HSM; drop -hsm"))
		}
		if c.Join == "" && len(g.RetryJoin) == 0 {
			c.Bootstrap = true
		}
		c.DevTLS = true
	}
	if err := c.Validate(); err != nil {
		return fail(err)
	}
	return o, nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

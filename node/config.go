// Package node composes one Trent node: it opens the HSM, builds the state
// machine, starts the Raft member and the gRPC server, and forms, joins or
// rejoins the region. cmd/kmsd is a thin flag parser around it; tests and
// tools start nodes in-process through the same code.
package node

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/transport"
)

// HSM backend kinds.
const (
	HSMSoft   = "soft"
	HSMPKCS11 = "pkcs11"
)

// Config describes one node. Zero values take the defaults kmsd documents.
type Config struct {
	DataDir  string
	NodeID   string // default: the certificate's (DevTLS: generated on first start), kept in DataDir
	Region   string // default: the certificate's region ("local" with DevTLS)
	GRPCAddr string // port 0 picks a free port, kept across restarts
	RaftAddr string // likewise

	Bootstrap      bool   // start a new region (ignored once DataDir has state)
	Join           string // gRPC address of a member to join (likewise)
	JoinSecretFile string // default DataDir/join-secret
	AuditLogPath   string // one record per client request; default DataDir/audit.log
	// AuditSyncInterval, when positive, answers a request once its audit
	// record is written to the file and syncs the log in the background at
	// most this often: a record then survives a crash of kmsd but not a
	// power loss (audit.Config.SyncInterval). Zero syncs before answering.
	// kmsd passes 20 ms unless told otherwise (-audit-sync-interval).
	AuditSyncInterval time.Duration

	// RateLimits throttle each principal's KMS requests on this node; the
	// zero value limits nothing.
	RateLimits transport.RateLimits

	// Gossip, when set, runs gossip membership: discovery and auto-join
	// through seed addresses, the WAN pool of all regions, and dead-server
	// cleanup. Nil runs without gossip.
	Gossip *GossipConfig
	// Replication tunes the replication of multi-region keys to other
	// regions (found through Gossip).
	Replication ReplicationConfig

	HSM              string // HSMSoft or HSMPKCS11
	UnsealSecretFile string // soft HSM; default DataDir/unseal-secret
	PKCS11Library    string
	PKCS11Label      string
	PKCS11PINFile    string

	// Mutual TLS: this node's certificate and key (kmsctl ca issue-node)
	// and the cluster CA certificates it trusts. The certificate names the
	// node's region and id. DevTLS instead creates a development CA and
	// certificates under DataDir/tls.
	TLSCertFile string
	TLSKeyFile  string
	TLSCAFile   string
	DevTLS      bool
	// TLSPollInterval is how often the certificate files are checked for a
	// rotation; zero is pki.DefaultPollInterval.
	TLSPollInterval time.Duration

	Logger *slog.Logger

	// WrapHSM, if set, wraps the opened HSM backend (instrumentation and
	// tests count or delay HSM calls with it).
	WrapHSM func(hsm.Backend) hsm.Backend

	// Timing; zero takes production defaults. Tests shorten them.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration
	SnapshotThreshold    uint64
	TrailingLogs         uint64
	LeaderTick           time.Duration
	// ReadRetry bounds how long a read waits for a leader before the node
	// refuses to serve.
	ReadRetry time.Duration
	// StrictReads confirms leadership with a quorum round for every batch
	// of reads, and makes followers fetch the read index for every batch,
	// instead of using the leader's and the followers' read leases.
	StrictReads bool
	// ProposeTimeout bounds a write, including waiting out an election.
	ProposeTimeout time.Duration
	// Now is the clock commands are stamped with; nil means time.Now.
	Now func() time.Time
}

// Validate applies defaults that depend on other fields and refuses
// contradictory settings, naming the setting at fault.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data dir must not be empty")
	}
	if c.Bootstrap && c.Join != "" {
		return errors.New("bootstrap and join exclude each other")
	}
	if c.AuditSyncInterval < 0 || c.AuditSyncInterval > maxAuditSyncInterval {
		return fmt.Errorf("audit sync interval %v: must be 0 (sync before answering) or up to %v", c.AuditSyncInterval, maxAuditSyncInterval)
	}
	if c.Region == "" && c.DevTLS {
		c.Region = devRegion
	}
	if c.HSM == "" {
		c.HSM = HSMSoft
	}
	switch c.HSM {
	case HSMSoft:
	case HSMPKCS11:
		if c.PKCS11Label == "" || c.PKCS11PINFile == "" {
			return errors.New("the pkcs11 HSM needs a token label and a PIN file")
		}
		if c.PKCS11Library == "" {
			c.PKCS11Library = "/usr/lib/softhsm/libsofthsm2.so"
		}
	default:
		return fmt.Errorf("hsm %q: must be %s or %s", c.HSM, HSMSoft, HSMPKCS11)
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:0"
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:0"
	}
	if c.JoinSecretFile == "" {
		c.JoinSecretFile = filepath.Join(c.DataDir, "join-secret")
	}
	if c.UnsealSecretFile == "" {
		c.UnsealSecretFile = filepath.Join(c.DataDir, "unseal-secret")
	}
	if c.AuditLogPath == "" {
		c.AuditLogPath = filepath.Join(c.DataDir, "audit.log")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.RateLimits.Validate(); err != nil {
		return err
	}
	if err := c.validateGossip(); err != nil {
		return err
	}
	return c.validateTLS()
}

package node

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/trent-kms/trent/transport/audit"
)

// maxAuditSyncInterval bounds Config.AuditSyncInterval: the records a power
// loss may take are those of one interval.
const maxAuditSyncInterval = 10 * time.Second

// openAuditLog opens the node's audit log (Config.AuditLogPath). It is
// opened before anything else that serves, and a log whose tail does not
// verify stops the node from starting (audit.ErrBroken): a node must not
// append to a log that was tampered with. Move the log aside to start anyway;
// kmsctl audit verify reports where it breaks.
func openAuditLog(cfg Config, log *slog.Logger) (*audit.Log, error) {
	l, err := audit.Open(audit.Config{
		Path:         cfg.AuditLogPath,
		Logger:       log.With("component", "audit"),
		SyncInterval: cfg.AuditSyncInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return l, nil
}

// closeAuditLog closes the audit log; Close calls it once the gRPC server
// has stopped, so no request is left to audit. A handler still running after
// a forced stop fails its request (audit.ErrClosed) rather than answer it
// unaudited.
func (n *Node) closeAuditLog() error {
	if n.audit == nil {
		return nil
	}
	if err := n.audit.Close(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

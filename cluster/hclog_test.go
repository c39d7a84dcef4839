package cluster

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/trent-kms/trent/internal/testlog"
)

func TestHCLoggerMapsLevelsNamesAndArgs(t *testing.T) {
	var out testlog.Buffer
	base := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := newHCLogger(base, "raft").Named("net").With("peer", "n2")

	if l.IsInfo() || !l.IsWarn() || l.GetLevel() != hclog.Warn {
		t.Fatalf("levels: info=%v warn=%v level=%v; the slog handler's level must decide", l.IsInfo(), l.IsWarn(), l.GetLevel())
	}
	l.Info("dropped")
	l.Warn("kept", "attempt", 3)
	got := out.String()
	if strings.Contains(got, "dropped") {
		t.Fatalf("an Info record passed a Warn handler: %s", got)
	}
	for _, want := range []string{"level=WARN", "msg=kept", "logger=raft.net", "peer=n2", "attempt=3"} {
		if !strings.Contains(got, want) {
			t.Fatalf("log line %q lacks %q", got, want)
		}
	}
}

func TestRaftLogsReachTheConfiguredLogger(t *testing.T) {
	var out testlog.Buffer
	c := newTestCluster(t, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&out, nil))
	})
	n := c.start("solo", t.TempDir(), "127.0.0.1:0")
	if err := n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitForLeader(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, eventually, "raft's leader log line", func() bool {
		return strings.Contains(out.String(), `msg="entering leader state" logger=raft`)
	})
}

package main

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditLogDefaultsToTheDataDirAndFollowsTheFlag(t *testing.T) {
	dir := t.TempDir()
	o, err := parseFlags([]string{"-dev", "-data-dir", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "audit.log"); o.node.AuditLogPath != want {
		t.Errorf("default audit log %q, want %q", o.node.AuditLogPath, want)
	}
	elsewhere := filepath.Join(t.TempDir(), "trent-audit.log")
	if o, err = parseFlags([]string{"-dev", "-data-dir", dir, "-audit-log", elsewhere}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if o.node.AuditLogPath != elsewhere {
		t.Errorf("-audit-log %q gave %q", elsewhere, o.node.AuditLogPath)
	}
}

func TestAuditSyncIntervalFlag(t *testing.T) {
	dir := t.TempDir()
	o, err := parseFlags([]string{"-dev", "-data-dir", dir}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.node.AuditSyncInterval != 20*time.Millisecond {
		t.Errorf("default audit sync interval %v, want 20ms", o.node.AuditSyncInterval)
	}
	if o, err = parseFlags([]string{"-dev", "-data-dir", dir, "-audit-sync-interval", "0"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if o.node.AuditSyncInterval != 0 {
		t.Errorf("-audit-sync-interval 0 gave %v, want 0 (sync before answering)", o.node.AuditSyncInterval)
	}
	var stderr strings.Builder
	if _, err := parseFlags([]string{"-dev", "-data-dir", dir, "-audit-sync-interval", "1m"}, &stderr); err == nil || !strings.Contains(stderr.String(), "audit sync interval") {
		t.Errorf("-audit-sync-interval 1m: err %v, stderr %q; want it refused by name", err, stderr.String())
	}
}

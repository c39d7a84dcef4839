package main

import (
	"io"
	"path/filepath"
	"testing"
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

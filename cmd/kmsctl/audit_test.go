package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
)

// writeAuditLog writes records through audit.Log, as a node does, and
// returns the log's path.
func writeAuditLog(t *testing.T, recs ...audit.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(audit.Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func testAuditRecord(op, principal, keyID, alias string) audit.Record {
	return audit.Record{Node: "n1", Region: "eu-1", Principal: principal, Operation: op, KeyID: keyID, Alias: alias,
		Outcome: audit.OutcomeAllowed, RequestID: "0123456789abcdef", SourceAddr: "10.0.0.7:5000"}
}

var auditTestRecords = []audit.Record{
	testAuditRecord("CreateKey", "admin", "k1", ""),
	testAuditRecord("Encrypt", "app", "k1", "alias/app"),
	testAuditRecord("Decrypt", "app", "k1", ""),
	testAuditRecord("Encrypt", "batch", "k2", ""),
	testAuditRecord("Encrypt", "app", "k1", "alias/app"),
}

// tailed parses tail's JSON lines.
func tailed(t *testing.T, out string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	for line := range strings.Lines(out) {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("tail printed %q, not a JSON record: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func seqs(recs []audit.Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, fmt.Sprint(r.Seq))
	}
	return strings.Join(s, ",")
}

func TestAuditVerify(t *testing.T) {
	path := writeAuditLog(t, auditTestRecords...)
	r := runKmsctl("", "audit", "verify", path).mustSucceed(t)
	wantOutput(t, r.stdout, "OK: 5 records\n")

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"Decrypt"`), []byte(`"Encrypt"`), 1)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runKmsctl("", "audit", "verify", path)
	if r.code != exitBrokenChain {
		t.Fatalf("exit %d, want %d; stderr %q", r.code, exitBrokenChain, r.stderr)
	}
	wantOutput(t, r.stdout, "BROKEN: line 3, seq 3: hash mismatch (the 2 records before it verify)\n")
}

func TestAuditTail(t *testing.T) {
	path := writeAuditLog(t, auditTestRecords...)
	for _, tc := range []struct {
		args []string
		want string // seqs
	}{
		{nil, "1,2,3,4,5"},
		{[]string{"-n", "2"}, "4,5"},
		{[]string{"-n", "0"}, "1,2,3,4,5"},
		{[]string{"--operation", "Encrypt"}, "2,4,5"},
		{[]string{"--principal", "app", "-n", "2"}, "3,5"},
		{[]string{"--key-id", "k2"}, "4"},
		{[]string{"--key-id", "alias/app"}, "2,5"},
		{[]string{"--key-id", "k1", "--operation", "Encrypt", "--principal", "app"}, "2,5"},
		{[]string{"--operation", "ScheduleKeyDeletion"}, ""},
	} {
		// Flags may come before or after the path.
		for _, args := range [][]string{append([]string{"audit", "tail", path}, tc.args...), append(append([]string{"audit", "tail"}, tc.args...), path)} {
			r := runKmsctl("", args...).mustSucceed(t)
			if got := seqs(tailed(t, r.stdout)); got != tc.want {
				t.Errorf("%v: records %s, want %s", args[2:], got, tc.want)
			}
		}
	}
	// The lines are the records as stored, hashes included.
	r := runKmsctl("", "audit", "tail", path, "-n", "1").mustSucceed(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	wantOutput(t, r.stdout, lines[len(lines)-2])
}

func TestAuditCommandLine(t *testing.T) {
	path := writeAuditLog(t, auditTestRecords[0])
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout for exit 0, else in stderr
	}{
		{[]string{"audit", "--help"}, exitOK, "usage: kmsctl audit verify PATH"},
		{[]string{"audit", "--help"}, exitOK, "kmsctl audit management [--after-index N] [--limit N]"},
		{[]string{"help", "audit"}, exitOK, "usage: kmsctl audit verify PATH"},
		{[]string{"audit", "management", "--help"}, exitOK, "usage: kmsctl audit management [--after-index N] [--limit N]"},
		{[]string{"help", "audit", "management"}, exitOK, "Operation: ManagementEvents"},
		{[]string{"audit", "management", "--after-index", "-1"}, exitUsage,
			"kmsctl: error: --after-index: \"-1\" is not a whole number from 0 to 18446744073709551615\nSee 'kmsctl audit management --help'.\n"},
		{[]string{"audit", "management", path}, exitUsage, "kmsctl: error: unexpected argument \"" + path + "\"\nSee 'kmsctl audit management --help'.\n"},
		{[]string{"--output", "text", "audit"}, exitUsage, "kmsctl: error: audit needs a subcommand: verify, tail or management\nSee 'kmsctl audit --help'.\n"},
		{[]string{"--output", "text", "audit", "verify", path}, exitUsage, "kmsctl: error: audit verify reads a local file and takes no global flags: run 'kmsctl audit verify ...'\nSee 'kmsctl audit --help'.\n"},
		{[]string{"audit", "tail", "--help"}, exitOK, "--key-id ID"},
		{[]string{"audit", "verify", "-h"}, exitOK, "usage: kmsctl audit verify PATH"},
		{[]string{"audit"}, exitUsage, "kmsctl: error: audit needs a subcommand: verify, tail or management\nSee 'kmsctl audit --help'.\n"},
		{[]string{"audit", "grep"}, exitUsage, `unknown audit subcommand "grep": want verify, tail or management`},
		{[]string{"audit", "verify"}, exitUsage, "audit verify needs the path of an audit log"},
		{[]string{"audit", "verify", path, path}, exitUsage, "audit verify takes one path, got 2"},
		{[]string{"audit", "tail", path, "--since", "1h"}, exitUsage, "flag provided but not defined: -since"},
		{[]string{"audit", "tail", path, "-n", "-1"}, exitUsage, "-n: -1 is negative"},
		{[]string{"audit", "tail", path, "-n", "many"}, exitUsage, `invalid value "many" for flag -n`},
		{[]string{"audit", "verify", filepath.Join(t.TempDir(), "missing.log")}, exitFailure, "no such file or directory"},
		{[]string{"audit", "tail", filepath.Join(t.TempDir(), "missing.log")}, exitFailure, "no such file or directory"},
	} {
		r := runKmsctl("", tc.args...)
		out := r.stderr
		if tc.code == exitOK {
			out = r.stdout
		}
		if r.code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.want)
		}
	}
	if r := runKmsctl("", "help"); !strings.Contains(r.stdout, "kmsctl audit --help") {
		t.Error("kmsctl help does not point to the audit commands")
	}
}

func TestAuditManagementFetchesAllEvents(t *testing.T) {
	ts := startServer(t)
	ts.cluster.reply("ManagementEvents",
		&kmspb.ManagementEventsResponse{Truncated: true, Events: []*kmspb.ManagementEvent{
			{Index: 3, Time: 1700000000.5, Principal: "admin", Operation: "CreateKey", KeyId: "k1"},
		}},
		&kmspb.ManagementEventsResponse{Events: []*kmspb.ManagementEvent{
			{Index: 7, Time: 1700000001, Principal: "admin", Operation: "CreateGrant", KeyId: "k1", GrantId: "g1"},
			{Index: 9, Time: 1700000002, Principal: "app", Operation: "DeleteAlias", AliasName: "alias/x", Error: "NotFound"},
		}},
	)

	r := ts.run("audit", "management").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "Events": [
        {
            "Index": 3,
            "Time": 1700000000.5,
            "Principal": "admin",
            "Operation": "CreateKey",
            "KeyId": "k1"
        },
        {
            "Index": 7,
            "Time": 1700000001,
            "Principal": "admin",
            "Operation": "CreateGrant",
            "KeyId": "k1",
            "GrantId": "g1"
        },
        {
            "Index": 9,
            "Time": 1700000002,
            "Principal": "app",
            "Operation": "DeleteAlias",
            "AliasName": "alias/x",
            "Error": "NotFound"
        }
    ]
}
`)
	// The index of the last event of a page is the next page's start.
	wantRequests(t, &ts.cluster.fake, &kmspb.ManagementEventsRequest{}, &kmspb.ManagementEventsRequest{AfterIndex: 3})
}

// As with --limit and --marker of the list commands, --limit or
// --after-index asks for one page, and Truncated says whether more follow.
func TestAuditManagementOnePage(t *testing.T) {
	ts := startServer(t)
	ts.cluster.reply("ManagementEvents", &kmspb.ManagementEventsResponse{Truncated: true, Events: []*kmspb.ManagementEvent{
		{Index: 12, Time: 1700000000, Principal: "admin", Operation: "PutKeyPolicy", KeyId: "k1"},
	}})

	r := ts.run("--query", "Truncated", "audit", "management", "--limit", "1").mustSucceed(t)
	wantOutput(t, r.stdout, "true\n")
	r = ts.run("audit", "management", "--after-index", "11", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "True\nEVENTS\t12\tk1\tPutKeyPolicy\tadmin\t1700000000\n")

	wantRequests(t, &ts.cluster.fake, &kmspb.ManagementEventsRequest{Limit: 1}, &kmspb.ManagementEventsRequest{AfterIndex: 11})
}

// A server that says "truncated" but returns no event would otherwise be
// asked for the same page forever.
func TestAuditManagementStopsWhenIndexDoesNotAdvance(t *testing.T) {
	ts := startServer(t)
	ts.cluster.reply("ManagementEvents", &kmspb.ManagementEventsResponse{Truncated: true})

	r := ts.run("audit", "management")

	if r.code != exitServiceError {
		t.Fatalf("exit %d, want %d", r.code, exitServiceError)
	}
	if n := len(ts.cluster.received()); n != 1 {
		t.Errorf("sent %d requests, want 1", n)
	}
}

// TestAuditCommandsOnARealNodesLog reads the log a node wrote while it
// served requests.
func TestAuditCommandsOnARealNodesLog(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := r.KMS(0)
	k, err := c.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := k.GetKeyMetadata().GetKeyId()
	for range 3 {
		if _, err := c.Encrypt(ctx, &kmspb.EncryptRequest{KeyId: id, Plaintext: []byte("p"), EncryptionContext: map[string]string{"app": "kmsctl"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: "alias/none"}); err == nil {
		t.Fatal("DescribeKey of a missing alias succeeded")
	}
	path := filepath.Join(r.DataDir(0), "audit.log")

	// The node is still running: the commands only read the file.
	wantOutput(t, runKmsctl("", "audit", "verify", path).mustSucceed(t).stdout, "OK: 5 records\n")
	recs := tailed(t, runKmsctl("", "audit", "tail", path, "--operation", "Encrypt", "--key-id", id).mustSucceed(t).stdout)
	if len(recs) != 3 || recs[0].EncryptionContext["app"] != "kmsctl" || recs[0].KeyVersion != k.GetKeyMetadata().GetCurrentKeyMaterialId() {
		t.Fatalf("tail of the Encrypt records: %+v", recs)
	}
	recs = tailed(t, runKmsctl("", "audit", "tail", path, "-n", "1").mustSucceed(t).stdout)
	if len(recs) != 1 || recs[0].Operation != "DescribeKey" || recs[0].ErrorCode != "NotFoundException" || recs[0].Alias != "alias/none" {
		t.Fatalf("last record: %+v", recs)
	}
}

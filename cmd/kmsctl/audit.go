package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
)

// audit verify and tail read a node's audit log file where kmsctl runs: no
// server is asked, so they work on a stopped node and on a copy of a log, and
// a node cannot vouch for its own log. Their command line is their own
// (a PATH argument, -n as in tail(1)), hence they are not in the command
// table, whose commands are RPCs. audit management is an RPC, and is in it.

const auditUsage = `usage: kmsctl audit verify PATH
       kmsctl audit tail PATH [-n N] [--key-id ID] [--principal P] [--operation OP]
       kmsctl audit management [--after-index N] [--limit N]

verify and tail read a node's audit log (DATA_DIR/audit.log, or kmsd
-audit-log PATH) on the machine it is on; no server is contacted.

  verify      check the hash chain from the first record. Prints "OK: N
              records" and exits 0, or prints the first broken link (line,
              seq, reason) and exits 1.
  tail        print the last N records that match every filter given, oldest
              first, as JSON lines.
  management  ask the region (admin role) for the management commands in its
              replicated state, the same on every node, oldest first; see
              'kmsctl audit management --help'.

tail flags:
  -n N             number of records (default 20; 0 prints all)
  --key-id ID      records about key ID, or made through alias ID (alias/NAME)
  --principal P    records of requests by principal P
  --operation OP   records of operation OP (Encrypt, CreateKey, ...)

Exit codes: 0 success, 1 broken chain (verify), 252 bad command line,
254 error from the server (management), 255 the log could not be read.
Record format: transport/audit/DESIGN.md.
`

// exitBrokenChain is verify's answer for a log that does not verify.
const exitBrokenChain = 1

// runAudit runs "kmsctl audit ..." with the arguments after "audit".
func runAudit(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 0:
		err = usagef("audit needs a subcommand: verify, tail or management")
	case args[0] == "verify":
		return auditVerify(args[1:], stdout, stderr)
	case args[0] == "tail":
		return auditTail(args[1:], stdout, stderr)
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, auditUsage)
		return exitOK
	default:
		err = usagef("unknown audit subcommand %q: want verify, tail or management", args[0])
	}
	return reportAuditUsage(stderr, err)
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	path, err := parseAuditArgs(flag.NewFlagSet("verify", flag.ContinueOnError), args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, auditUsage)
		return exitOK
	}
	if err != nil {
		return reportAuditUsage(stderr, err)
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "kmsctl: audit verify: %v\n", err)
		return exitFailure
	}
	defer f.Close()
	n, err := audit.Verify(f)
	var broken *audit.BrokenLinkError
	switch {
	case errors.As(err, &broken):
		fmt.Fprintf(stdout, "BROKEN: line %d, seq %d: %s (the %d records before it verify)\n", broken.Line, broken.Seq, broken.Reason, n)
		return exitBrokenChain
	case err != nil:
		fmt.Fprintf(stderr, "kmsctl: audit verify: %s: %v\n", path, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "OK: %d records\n", n)
	return exitOK
}

func auditTail(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	n := fs.Int("n", 20, "")
	var filter audit.Filter
	fs.StringVar(&filter.KeyID, "key-id", "", "")
	fs.StringVar(&filter.Principal, "principal", "", "")
	fs.StringVar(&filter.Operation, "operation", "", "")
	path, err := parseAuditArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, auditUsage)
		return exitOK
	}
	if err == nil && *n < 0 {
		err = usagef("-n: %d is negative", *n)
	}
	if err != nil {
		return reportAuditUsage(stderr, err)
	}
	records, err := audit.Tail(path, *n, filter) // n 0: all
	if err != nil {
		fmt.Fprintf(stderr, "kmsctl: audit tail: %v\n", err)
		return exitFailure
	}
	w := bufio.NewWriter(stdout)
	enc := json.NewEncoder(w) // one record per line, as in the log
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(stderr, "kmsctl: audit tail: %v\n", err)
			return exitFailure
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "kmsctl: audit tail: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// parseAuditArgs parses fs's flags wherever they stand among the arguments
// and returns the one PATH argument.
func parseAuditArgs(fs *flag.FlagSet, args []string) (string, error) {
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	switch len(paths) {
	case 0:
		return "", usagef("audit %s needs the path of an audit log", fs.Name())
	case 1:
		return paths[0], nil
	}
	return "", usagef("audit %s takes one path, got %d", fs.Name(), len(paths))
}

func reportAuditUsage(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "kmsctl: error: %v\nSee 'kmsctl audit --help'.\n", err)
	return exitUsage
}

// auditCommands are the audit subcommands that ask a server.
var auditCommands = []*command{
	{
		name: "audit management", op: "ManagementEvents",
		summary: "List the management commands the region applied, oldest first (admin role).",
		flags: []flagSpec{
			{name: "after-index", kind: kindUint64, metavar: "N", usage: "return the page of events after Raft index N, such as the last Index printed before"},
			{name: "limit", kind: kindInt, metavar: "N", usage: "return one page of at most N events (without --limit and --after-index, all events are fetched)"},
		},
		run: func(r *request) (any, error) {
			out := managementEventsOutput{Events: []managementEventJSON{}}
			// The Raft index of the last event seen serves as the marker,
			// so paging works as with the list commands.
			start := ""
			if r.flags.has("after-index") {
				start = strconv.FormatUint(r.flags.uint64("after-index"), 10)
			}
			var err error
			_, out.Truncated, err = fetchPages(start, r.flags.has("limit") || r.flags.has("after-index"), func(marker string) (string, bool, error) {
				var after uint64
				if marker != "" {
					after, _ = strconv.ParseUint(marker, 10, 64) // always one of ours
				}
				resp, err := r.cluster.ManagementEvents(r.ctx, &kmspb.ManagementEventsRequest{AfterIndex: after, Limit: r.flags.int32("limit")})
				next := marker
				for _, e := range resp.GetEvents() {
					out.Events = append(out.Events, managementEventJSON{
						Index:     e.GetIndex(),
						Time:      e.GetTime(),
						Principal: e.GetPrincipal(),
						Operation: e.GetOperation(),
						KeyID:     e.GetKeyId(),
						AliasName: e.GetAliasName(),
						GrantID:   e.GetGrantId(),
						Error:     e.GetError(),
					})
					next = strconv.FormatUint(e.GetIndex(), 10)
				}
				return next, resp.GetTruncated(), err
			})
			return out, err
		},
	},
}

package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trent-kms/trent/transport/pki"
)

// The ca commands create the cluster CA and issue certificates as files
// where kmsctl runs: no server is asked (a node cannot issue its own
// credentials), and the CA key need never be on a node. Like the audit
// commands, their command line is their own (a DIR argument), hence they are
// not in the command table, whose commands are RPCs.

const caUsage = `usage: kmsctl ca init DIR [--name NAME] [--days N]
       kmsctl ca issue-node --ca DIR --region REGION --node-id ID [--host HOST ...] --out DIR [--days N]
       kmsctl ca issue-client --ca DIR --principal NAME [--role ROLE ...] --out DIR [--days N]

Create a cluster CA and issue the certificates every connection needs
(mutual TLS 1.3); no server is contacted.

  init          create DIR/ca.crt and DIR/ca.key (keep ca.key off the nodes);
                refuses if either exists.
  issue-node    write OUT/node.crt, OUT/node.key and OUT/ca.crt for node ID of
                REGION (trent://node/REGION/ID), for kmsd -tls-cert, -tls-key,
                -tls-ca. Name every host and IP the node is reached at with
                --host; localhost and 127.0.0.1 are always included. Issuing
                into a running node's directory rotates its certificate: the
                node picks the new files up within seconds, or at once on
                SIGHUP.
  issue-client  write OUT/client.crt, OUT/client.key and OUT/ca.crt for
                principal NAME (trent://principal/NAME) with each role
                (trent://role/ROLE), for kmsctl --tls-dir OUT. Role admin may
                run the cluster commands.

flags:
  --name NAME       the CA's common name (default "Trent CA")
  --days N          validity in days (default: CA 3650, certificates 365)
  --ca DIR          directory of the CA (ca.crt, ca.key)
  --out DIR         directory to write to (created if missing)
  --host HOST       DNS name or IP address of the node; repeat for more
  --role ROLE       role of the principal; repeat for more

Exit codes: 0 success, 252 bad command line, 255 the files could not be
read or written.
`

// runCA runs "kmsctl ca ..." with the arguments after "ca".
func runCA(args []string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) == 0:
		err = usagef("ca needs a subcommand: init, issue-node or issue-client")
	case args[0] == "init":
		return caInit(args[1:], stdout, stderr)
	case args[0] == "issue-node":
		return caIssueNode(args[1:], stdout, stderr)
	case args[0] == "issue-client":
		return caIssueClient(args[1:], stdout, stderr)
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, caUsage)
		return exitOK
	default:
		err = usagef("unknown ca subcommand %q: want init, issue-node or issue-client", args[0])
	}
	return reportCAUsage(stderr, err)
}

func caInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	name := fs.String("name", "Trent CA", "")
	days := fs.Int("days", 0, "")
	dirs, err := parseInterspersed(fs, args)
	if err == nil && len(dirs) != 1 {
		err = usagef("ca init takes one directory, got %d", len(dirs))
	}
	if code, done := caUsageOutcome(err, stdout, stderr); done {
		return code
	}
	validity, err := daysFlag(*days)
	if err != nil {
		return reportCAUsage(stderr, err)
	}
	if err := pki.InitCA(dirs[0], *name, validity); err != nil {
		fmt.Fprintf(stderr, "kmsctl: ca init: %v\n", err)
		return exitFailure
	}
	return printIssued(stdout, stderr, dirs[0], pki.CACertFile, pki.CAKeyFile)
}

func caIssueNode(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issue-node", flag.ContinueOnError)
	caDir, out := fs.String("ca", "", ""), fs.String("out", "", "")
	var req pki.NodeCertRequest
	fs.StringVar(&req.Region, "region", "", "")
	fs.StringVar(&req.NodeID, "node-id", "", "")
	fs.Var((*repeated)(&req.Hosts), "host", "")
	days := fs.Int("days", 0, "")
	rest, err := parseInterspersed(fs, args)
	if err == nil {
		err = checkCAFlags(rest, map[string]string{"--ca": *caDir, "--region": req.Region, "--node-id": req.NodeID, "--out": *out})
	}
	if code, done := caUsageOutcome(err, stdout, stderr); done {
		return code
	}
	if req.Validity, err = daysFlag(*days); err != nil {
		return reportCAUsage(stderr, err)
	}
	return issueWith(stdout, stderr, "issue-node", *caDir, *out, func(ca *pki.CA) error { return ca.IssueNode(*out, req) },
		pki.NodeCertFile, pki.NodeKeyFile)
}

func caIssueClient(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issue-client", flag.ContinueOnError)
	caDir, out := fs.String("ca", "", ""), fs.String("out", "", "")
	var req pki.ClientCertRequest
	fs.StringVar(&req.Principal, "principal", "", "")
	fs.Var((*repeated)(&req.Roles), "role", "")
	days := fs.Int("days", 0, "")
	rest, err := parseInterspersed(fs, args)
	if err == nil {
		err = checkCAFlags(rest, map[string]string{"--ca": *caDir, "--principal": req.Principal, "--out": *out})
	}
	if code, done := caUsageOutcome(err, stdout, stderr); done {
		return code
	}
	if req.Validity, err = daysFlag(*days); err != nil {
		return reportCAUsage(stderr, err)
	}
	return issueWith(stdout, stderr, "issue-client", *caDir, *out, func(ca *pki.CA) error { return ca.IssueClient(*out, req) },
		pki.ClientCertFile, pki.ClientKeyFile)
}

// issueWith loads the CA in caDir, runs issue with it and reports the files
// written to out.
func issueWith(stdout, stderr io.Writer, cmd, caDir, out string, issue func(*pki.CA) error, certFile, keyFile string) int {
	ca, err := pki.LoadCA(caDir)
	if err == nil {
		err = issue(ca)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmsctl: ca %s: %v\n", cmd, err)
		return exitFailure
	}
	return printIssued(stdout, stderr, out, certFile, keyFile, pki.CACertFile)
}

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// parseInterspersed parses fs's flags wherever they stand among the
// arguments and returns the other arguments, for the ca and audit commands.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard) // errors are reported by the caller, help is its usage text
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// checkCAFlags refuses stray arguments and names every required flag left
// empty, in the order of the usage text.
func checkCAFlags(rest []string, required map[string]string) error {
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	var missing []string
	for _, name := range []string{"--ca", "--region", "--node-id", "--principal", "--out"} {
		if v, ok := required[name]; ok && v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return usagef("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	return nil
}

// caUsageOutcome turns a parse result into help or a usage error; done is
// false when the command should go on.
func caUsageOutcome(err error, stdout, stderr io.Writer) (code int, done bool) {
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, caUsage)
		return exitOK, true
	case err != nil:
		return reportCAUsage(stderr, err), true
	}
	return 0, false
}

// maxDays is the longest validity a time.Duration holds (about 292 years).
const maxDays = int(math.MaxInt64 / int64(24*time.Hour))

func daysFlag(days int) (time.Duration, error) {
	if days < 0 {
		return 0, usagef("--days: %d is negative", days)
	}
	if days > maxDays {
		// Larger values would overflow into a short or negative validity.
		return 0, usagef("--days: %d is more than %d", days, maxDays)
	}
	return time.Duration(days) * 24 * time.Hour, nil // 0: the default
}

// printIssued reports the files written and the identity and expiry of the
// certificate among them (the first file); never the key.
func printIssued(stdout, stderr io.Writer, dir string, files ...string) int {
	cert, err := readCertificate(filepath.Join(dir, files[0]))
	if err != nil {
		fmt.Fprintf(stderr, "kmsctl: ca: written, but cannot read it back: %v\n", err)
		return exitFailure
	}
	who := cert.Subject.CommonName
	if id, err := pki.IdentityOf(cert); err == nil {
		who = id.String()
		if len(id.Roles) > 0 {
			who += " roles " + strings.Join(id.Roles, ",")
		}
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f)
	}
	fmt.Fprintf(stdout, "%s, expires %s: %s\n", who, cert.NotAfter.UTC().Format(time.RFC3339), strings.Join(paths, " "))
	return exitOK
}

func readCertificate(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func reportCAUsage(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "kmsctl: error: %v\nSee 'kmsctl ca --help'.\n", err)
	return exitUsage
}

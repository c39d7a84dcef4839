// Command kmsctl is the command-line client of Trent. Its commands, flags,
// JSON output and exit codes mirror "aws kms" so that scripts port over.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/trent-kms/trent/transport/kmspb"
)

const defaultEndpoint = "127.0.0.1:7420"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// invocation is a fully parsed command line.
type invocation struct {
	cmd       *command
	helpTopic string // "cluster" or "audit" when help was asked for that group
	flags     flagValues
	endpoint  string
	tlsDir    string // "" until dial picks the default
	output    string
	query     query
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "audit" && !(len(args) > 1 && args[1] == "management") { // local files, not an RPC: see audit.go
		return runAudit(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "ca" { // local files, not an RPC: see ca.go
		return runCA(args[1:], stdout, stderr)
	}
	inv, err := parseCommandLine(args, stdin)
	if errors.Is(err, errHelp) {
		switch {
		case inv.cmd != nil:
			printCommandHelp(stdout, inv.cmd)
		case inv.helpTopic == "cluster":
			printClusterHelp(stdout)
		case inv.helpTopic == "audit":
			fmt.Fprint(stdout, auditUsage)
		default:
			printMainHelp(stdout)
		}
		return exitOK
	}
	if err != nil {
		return reportUsage(stderr, inv, err)
	}

	conn, err := dial(inv.endpoint, inv.tlsDir)
	if isUsageError(err) {
		return reportUsage(stderr, inv, err)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kmsctl: %v\n", err)
		return exitFailure
	}
	defer conn.Close()
	result, err := inv.cmd.run(&request{
		ctx:     context.Background(),
		kms:     kmspb.NewKMSClient(conn),
		cluster: kmspb.NewClusterClient(conn),
		flags:   inv.flags,
	})
	if isUsageError(err) {
		return reportUsage(stderr, inv, err)
	}
	if err != nil {
		code, msg := serviceErrorCode(err)
		fmt.Fprintf(stderr, "An error occurred (%s) when calling the %s operation: %s\n", code, inv.cmd.op, msg)
		return exitServiceError
	}
	if err := printResult(stdout, result, inv.output, inv.query); err != nil {
		fmt.Fprintf(stderr, "kmsctl: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// subcommands lists, by group, the commands whose names are two words.
var subcommands = map[string]string{
	"cluster": "status or remove-node",
	// verify and tail come here only after global flags (which they do
	// not take); without them, run sends them to runAudit.
	"audit": "verify, tail or management",
}

func reportUsage(stderr io.Writer, inv *invocation, err error) int {
	fmt.Fprintf(stderr, "kmsctl: error: %v\n", err)
	switch {
	case inv.cmd != nil:
		fmt.Fprintf(stderr, "See 'kmsctl %s --help'.\n", inv.cmd.name)
	case inv.helpTopic != "":
		fmt.Fprintf(stderr, "See 'kmsctl %s --help'.\n", inv.helpTopic)
	default:
		fmt.Fprintln(stderr, "See 'kmsctl help'.")
	}
	return exitUsage
}

// parseCommandLine splits args into global flags, the command and its
// flags, and converts every value, so that all usage errors are found before
// anything is sent. It returns errHelp when help was asked for.
func parseCommandLine(args []string, stdin io.Reader) (*invocation, error) {
	inv := &invocation{}

	// Global flags may also come before the command: kmsctl --output text ...
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if slices.Contains([]string{"--endpoint", "--tls-dir", "--output", "--query"}, args[i]) {
			i++ // skip its value
		}
		i++
	}
	raw, err := parseFlags(args[:min(i, len(args))], globalFlags)
	if err != nil {
		return inv, err
	}
	if i >= len(args) {
		return inv, usagef("no command given")
	}
	name, rest := args[i], args[i+1:]

	if name == "help" {
		topic := strings.Join(rest, " ")
		inv.cmd = findCommand(topic)
		if inv.cmd == nil && topic != "" && subcommands[topic] == "" {
			return inv, usagef("unknown command %q", topic)
		}
		inv.helpTopic = topic
		return inv, errHelp
	}
	if subcommands[name] != "" {
		inv.helpTopic = name
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") || rest[0] == "help" {
			if _, err := parseFlags(rest, globalFlags); errors.Is(err, errHelp) {
				return inv, err
			}
			return inv, usagef("%s needs a subcommand: %s", name, subcommands[name])
		}
		name, rest = name+" "+rest[0], rest[1:]
	}
	if name == "audit verify" || name == "audit tail" {
		return inv, usagef("%s reads a local file and takes no global flags: run 'kmsctl %s ...'", name, name)
	}
	if inv.cmd = findCommand(name); inv.cmd == nil {
		return inv, usagef("unknown command %q", name)
	}

	specs := slices.Concat(inv.cmd.flags, globalFlags)
	cmdRaw, err := parseFlags(rest, specs)
	if err != nil {
		return inv, err
	}
	for k, v := range cmdRaw {
		if _, dup := raw[k]; dup {
			return inv, usagef("--%s given more than once", k)
		}
		raw[k] = v
	}
	if inv.flags, err = convertFlags(raw, specs, stdin); err != nil {
		return inv, err
	}

	inv.endpoint = cmp.Or(inv.flags.str("endpoint"), os.Getenv("TRENT_ENDPOINT"), defaultEndpoint)
	inv.tlsDir = cmp.Or(inv.flags.str("tls-dir"), os.Getenv(tlsDirEnv))
	inv.output = cmp.Or(inv.flags.str("output"), "json")
	if inv.output != "json" && inv.output != "text" {
		return inv, usagef("--output: %q is not json or text", inv.output)
	}
	inv.query, err = parseQuery(inv.flags.str("query"))
	return inv, err
}

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func printMainHelp(w io.Writer) {
	fmt.Fprint(w, `usage: kmsctl [--endpoint HOST:PORT] [--tls-dir DIR] [--output json|text] [--query PATH] <command> [flags]

kmsctl is the command-line client of Trent. Commands, flags, output and exit
codes follow "aws kms", so scripts written for it port over.
`)
	width := 0
	for _, g := range commandGroups {
		for _, c := range g.commands {
			width = max(width, len(c.name))
		}
	}
	for _, g := range commandGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, c := range g.commands {
			fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
		}
	}
	fmt.Fprintln(w, "\nGlobal flags, accepted before or after the command:")
	printFlagTable(w, globalFlags)
	fmt.Fprint(w, `
Binary inputs take fileb://PATH (raw bytes; fileb://- is standard input),
file://PATH (base64 text) or base64 text. Encryption contexts take k=v,k2=v2
or JSON {"k":"v"}. Text inputs such as --policy take the text, or
file://PATH to read it byte for byte. Exit codes: 0 success, 252 bad command
line, 254 error from the server.

Run 'kmsctl <command> --help' for the flags of a command.
Run 'kmsctl audit --help' for verify and tail of a node's audit log file.
Run 'kmsctl ca --help' to create a cluster CA and issue node and client
certificates.
`)
}

func printClusterHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: kmsctl cluster <subcommand> [flags]")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range clusterCommands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: kmsctl %s", c.name)
	for _, f := range c.flags {
		if f.required {
			fmt.Fprintf(w, " %s", flagSynopsis(f))
		} else {
			fmt.Fprintf(w, " [%s]", flagSynopsis(f))
		}
	}
	if c.details != "" {
		fmt.Fprintf(w, "\n\n%s\n\n%s\n", c.summary, c.details)
	} else {
		fmt.Fprintf(w, "\n\n%s\nOperation: %s\n", c.summary, c.op)
	}
	if len(c.flags) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		printFlagTable(w, c.flags)
	}
	fmt.Fprintln(w, "\nGlobal flags:")
	printFlagTable(w, globalFlags)
}

func flagSynopsis(f flagSpec) string {
	switch {
	case f.kind == kindBool:
		return "--" + f.name + " | --no-" + f.name
	case f.kind.multi():
		return "--" + f.name + " " + f.placeholder() + " ..."
	}
	return "--" + f.name + " " + f.placeholder()
}

func printFlagTable(w io.Writer, flags []flagSpec) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range flags {
		usage := f.usage
		if f.required {
			usage = "required; " + usage
		}
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSuffix(flagSynopsis(f), " ..."), usage)
	}
	tw.Flush()
}

package main

import (
	"context"
	"fmt"

	"github.com/trent-kms/trent/transport/kmspb"
)

// command is one kmsctl subcommand. Its run function sends the request and
// returns the output shape to print, or nil when the API answers nothing
// (then nothing is printed, as with aws).
type command struct {
	name    string // as typed: "describe-key", "cluster status"
	op      string // the RPC; error messages name it as AWS names the operation
	summary string
	// details, for a command that makes many requests rather than one
	// (drill), says what it does; help prints it instead of the operation.
	details string
	flags   []flagSpec
	run     func(r *request) (any, error)
}

// request is what a command's run function works with.
type request struct {
	ctx     context.Context
	kms     kmspb.KMSClient
	cluster kmspb.ClusterClient
	flags   flagValues
}

// commandGroups is the command table, in the order help lists it.
var commandGroups = []struct {
	title    string
	commands []*command
}{
	{"Keys", keyCommands},
	{"Multi-region keys", multiRegionCommands},
	{"Rotation", rotationCommands},
	{"Aliases", aliasCommands},
	{"Tags", tagCommands},
	{"Key policies", policyCommands},
	{"Grants", grantCommands},
	{"Cryptography", cryptoCommands},
	{"Cluster", clusterCommands},
	{"Audit", auditCommands},
	{"Disaster recovery", drillCommands},
}

func findCommand(name string) *command {
	for _, g := range commandGroups {
		for _, c := range g.commands {
			if c.name == name {
				return c
			}
		}
	}
	return nil
}

// globalFlags are accepted before or after the command, as with aws.
var globalFlags = []flagSpec{
	{name: "endpoint", metavar: "HOST:PORT", usage: "server address (default $TRENT_ENDPOINT, else " + defaultEndpoint + ")"},
	{name: "tls-dir", metavar: "DIR", usage: "client certificate directory: client.crt, client.key, ca.crt (default $" + tlsDirEnv + ", else ./" + devAdminTLSDir + ", where kmsd -dev writes one)"},
	{name: "output", metavar: "json|text", usage: "output format (default json)"},
	{name: "query", metavar: "PATH", usage: "print only this part of the output, e.g. KeyMetadata.Arn or Keys[].KeyId"},
}

// Flags shared by several commands.
var (
	keyIDFlag  = flagSpec{name: "key-id", kind: kindString, required: true, usage: "key id, key ARN, alias/NAME or alias ARN"}
	limitFlag  = flagSpec{name: "limit", kind: kindInt, metavar: "N", usage: "return one page of at most N items (without --limit and --marker, all pages are fetched)"}
	markerFlag = flagSpec{name: "marker", kind: kindString, usage: "return the page starting at this NextMarker"}
)

// paginate calls fetchPage with successive markers until the listing is
// complete, as the AWS CLI does for list commands; the merged answer then
// has neither NextMarker nor Truncated, as with aws. With --limit or
// --marker the user is paging by hand: one page is fetched, and its
// NextMarker and Truncated are returned for the output.
func paginate(r *request, fetchPage func(marker string) (next string, truncated bool, err error)) (string, *bool, error) {
	return fetchPages(r.flags.str("marker"), r.flags.has("limit") || r.flags.has("marker"), fetchPage)
}

// fetchPages is paginate for listings whose marker is not --marker: from
// marker, all pages, or one when onePage.
func fetchPages(marker string, onePage bool, fetchPage func(marker string) (next string, truncated bool, err error)) (string, *bool, error) {
	for {
		next, truncated, err := fetchPage(marker)
		switch {
		case err != nil:
			return "", nil, err
		case onePage:
			return next, &truncated, nil
		case !truncated:
			return "", nil, nil
		case next == "" || next == marker:
			// Asking again would loop forever.
			return "", nil, fmt.Errorf("server said the list is truncated but gave NextMarker %q after marker %q", next, marker)
		}
		marker = next
	}
}

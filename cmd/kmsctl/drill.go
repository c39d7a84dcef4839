package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// kmsctl drill rehearses the loss of a region: it makes multi-region keys
// in the primary region, cuts that region off, fails over to the survivor
// by force, brings the primary back and checks that nothing acknowledged
// before the cut was lost. drill.go holds the command line, drill_run.go
// the steps, drill_report.go the report, drill_local*.go the actions of a
// dev-cluster.sh deployment on this machine.

var drillCommands = []*command{drillCommand}

var drillCommand = &command{
	name: "drill", op: "Drill",
	summary: "Rehearse the loss of a region: fail multi-region keys over, restore, check nothing was lost.",
	details: `The drill makes --keys multi-region keys in the first region of --regions
(the primary), replicates them to the second (the survivor), encrypts in
both regions and rotates once. It then cuts the primary off: with --local
DIR it kills the primary's kmsd processes of a scripts/dev-cluster.sh
--regions deployment in DIR, else it asks you to and waits for Enter. It
promotes the survivor with update-primary-region --force (RTO: from the cut
to the first and the last promotion), decrypts, encrypts and rotates there,
restores the primary (--local: starts the killed processes again with the
command lines they had) and waits until both regions agree on the keys
(convergence). Every ciphertext must then decrypt in both regions and every
key version made before the cut must be listed in both (RPO: what is
missing, must be 0). --failback then makes the first region the primary
again. Each wait is bounded by --timeout.

The keys stay afterwards, described "kmsctl drill RUN-ID: ...", unless
--cleanup schedules their deletion once the primary is back, whatever the
drill found: each replica with the shortest waiting period, 7 days, then
each primary, whose 7 days start when its last replica is gone. The exit
code is 0 only if every step passed and RPO is 0. Progress goes to
standard error, the report to standard output: a table, or with
--output json the same as JSON (the drill's default output is text).`,
	flags: []flagSpec{
		{name: "regions", kind: kindString, required: true, metavar: "PRIMARY,SURVIVOR", usage: "the region to cut (the keys' primary) and the region that takes over"},
		{name: "endpoints", kind: kindString, metavar: "REGION=HOST:PORT,REGION=HOST:PORT", usage: "a node of each region (default with --local: the first of each region in DIR/endpoints)"},
		{name: "keys", kind: kindInt, metavar: "N", usage: fmt.Sprintf("multi-region keys to make for the drill, 1 to %d (default %d)", drillMaxKeys, drillDefaultKeys)},
		{name: "local", kind: kindString, metavar: "DIR", usage: "a scripts/dev-cluster.sh up DIR --regions ... deployment on this machine: the drill kills and restarts the primary's nodes itself, and connects with DIR/admin unless --tls-dir names another"},
		{name: "timeout", kind: kindString, metavar: "DURATION", usage: "bound on each wait, such as 90s or 5m (default 2m)"},
		{name: "failback", kind: kindBool, usage: "after the check, make the first region the primary again (planned) and time it"},
		{name: "cleanup", kind: kindBool, usage: "at the end, schedule the drill's keys for deletion in both regions (7-day waiting period, replicas first)"},
	},
	run: runDrillCommand,
}

const (
	drillDefaultKeys    = 5
	drillMaxKeys        = 100
	drillDefaultTimeout = 2 * time.Minute
)

// drillConfig is a checked drill command line.
type drillConfig struct {
	primary, survivor string
	endpoints         map[string]string // region → HOST:PORT
	tlsDir            string            // "" lets dial pick its default
	keys              int
	local             string // absolute dev-cluster directory, or ""
	timeout           time.Duration
	failback          bool
	cleanup           bool
	output            string
	query             query
}

func runDrillCommand(r *request) (any, error) {
	cfg, err := parseDrillConfig(r.flags, os.Getenv)
	if err != nil {
		return nil, err
	}
	var actions drillActions
	if cfg.local != "" {
		if actions, err = newLocalActions(cfg.local, cfg.primary, os.Stderr); err != nil {
			return nil, err
		}
	} else {
		actions = &operatorActions{in: bufio.NewReader(os.Stdin), out: os.Stderr, primary: cfg.primary}
	}
	clients, closeClients, err := dialDrillRegions(cfg)
	if err != nil {
		// Nothing was sent: the certificate or an endpoint is wrong.
		return nil, usagef("%v", err)
	}
	defer closeClients()
	report := runDrill(r.ctx, cfg, clients, actions, os.Stderr)
	if err := writeDrillReport(os.Stdout, report, cfg.output, cfg.query); err != nil {
		return nil, err
	}
	return nil, report.failure()
}

// parseDrillConfig checks the drill's flags (and the global --tls-dir,
// --output and --query) before anything is sent, so a typo never leaves
// keys made and a region cut.
func parseDrillConfig(flags flagValues, getenv func(string) string) (*drillConfig, error) {
	cfg := &drillConfig{keys: drillDefaultKeys, timeout: drillDefaultTimeout, failback: flags.bool("failback"), cleanup: flags.bool("cleanup")}

	regions := strings.Split(flags.str("regions"), ",")
	if len(regions) != 2 || regions[0] == "" || regions[1] == "" {
		return nil, usagef("--regions: want PRIMARY,SURVIVOR (two region names), got %q", flags.str("regions"))
	}
	if regions[0] == regions[1] {
		return nil, usagef("--regions: the survivor must be another region than the primary %s", regions[0])
	}
	cfg.primary, cfg.survivor = regions[0], regions[1]

	if flags.has("keys") {
		cfg.keys = int(flags.int32("keys"))
		if cfg.keys < 1 || cfg.keys > drillMaxKeys {
			return nil, usagef("--keys: want 1 to %d, got %d", drillMaxKeys, cfg.keys)
		}
	}
	if text := flags.str("timeout"); text != "" {
		d, err := time.ParseDuration(text)
		if err != nil || d <= 0 {
			return nil, usagef("--timeout: want a positive duration such as 90s or 5m, got %q", text)
		}
		cfg.timeout = d
	}
	// A report is read by people first; json is there for scripts.
	cfg.output = cmp.Or(flags.str("output"), "text")
	if cfg.output != "json" && cfg.output != "text" {
		return nil, usagef("--output: %q is not json or text", cfg.output)
	}
	var err error
	if cfg.query, err = parseQuery(flags.str("query")); err != nil {
		return nil, err
	}

	if dir := flags.str("local"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, usagef("--local: %v", err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, usagef("--local: %s is not a directory (want the DIR of scripts/dev-cluster.sh up DIR --regions ...)", dir)
		}
		cfg.local = abs
	}
	cfg.tlsDir = flags.str("tls-dir")
	if cfg.tlsDir == "" && cfg.local != "" {
		cfg.tlsDir = filepath.Join(cfg.local, "admin")
	}
	cfg.tlsDir = cmp.Or(cfg.tlsDir, getenv(tlsDirEnv))

	switch {
	case flags.has("endpoints"):
		cfg.endpoints, err = parseDrillEndpoints(flags.str("endpoints"), regions)
	case cfg.local != "":
		cfg.endpoints, err = readDevClusterEndpoints(cfg.local, regions)
	default:
		err = usagef("--endpoints: needed without --local, e.g. --endpoints %s=HOST:PORT,%s=HOST:PORT", cfg.primary, cfg.survivor)
	}
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseDrillEndpoints reads REGION=HOST:PORT,REGION=HOST:PORT: one node
// of each region of --regions. Any node serves: writes are forwarded to
// the region's leader.
func parseDrillEndpoints(text string, regions []string) (map[string]string, error) {
	out := make(map[string]string)
	for item := range strings.SplitSeq(text, ",") {
		region, endpoint, ok := strings.Cut(item, "=")
		if !ok || region == "" {
			return nil, usagef("--endpoints: want REGION=HOST:PORT, got %q", item)
		}
		if region != regions[0] && region != regions[1] {
			return nil, usagef("--endpoints: region %s is not in --regions %s,%s", region, regions[0], regions[1])
		}
		if _, dup := out[region]; dup {
			return nil, usagef("--endpoints: region %s given twice", region)
		}
		if err := checkEndpoint(endpoint); err != nil {
			return nil, usagef("--endpoints: %s: %v", region, err)
		}
		out[region] = endpoint
	}
	for _, region := range regions {
		if out[region] == "" {
			return nil, usagef("--endpoints: no endpoint for region %s", region)
		}
	}
	return out, nil
}

// checkEndpoint refuses what dial would refuse, up front.
func checkEndpoint(endpoint string) error {
	_, port, err := net.SplitHostPort(endpoint)
	if err != nil || port == "" || strings.Contains(endpoint, "/") {
		return fmt.Errorf("want HOST:PORT, got %q", endpoint)
	}
	return nil
}

// readDevClusterEndpoints takes the first node of each region from
// DIR/endpoints, which dev-cluster.sh up --regions writes as
// "REGION HOST:PORT" lines.
func readDevClusterEndpoints(dir string, regions []string) (map[string]string, error) {
	path := filepath.Join(dir, "endpoints")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("--local: no %s: is the deployment up (scripts/dev-cluster.sh up %s --regions %s,%s)?", path, dir, regions[0], regions[1])
	}
	if err != nil {
		return nil, usagef("--local: %v", unwrapPathError(err))
	}
	out := make(map[string]string)
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			continue // a one-region DIR lists bare endpoints: no region named
		}
		if _, seen := out[fields[0]]; !seen && checkEndpoint(fields[1]) == nil {
			out[fields[0]] = fields[1]
		}
	}
	for _, region := range regions {
		if out[region] == "" {
			return nil, usagef("--local: %s lists no node of region %s (was the deployment started with --regions %s,%s?)", path, region, regions[0], regions[1])
		}
	}
	return map[string]string{regions[0]: out[regions[0]], regions[1]: out[regions[1]]}, nil
}

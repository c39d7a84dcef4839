package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestDrillConfigDefaults(t *testing.T) {
	cfg, err := parseDrillConfig(flagValues{
		"regions":   "eu-1,us-1",
		"endpoints": "us-1=10.1.0.1:7420,eu-1=[::1]:7420",
	}, func(name string) string {
		if name == tlsDirEnv {
			return "/etc/trent/admin"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.primary != "eu-1" || cfg.survivor != "us-1" {
		t.Errorf("primary %q, survivor %q", cfg.primary, cfg.survivor)
	}
	if cfg.endpoints["eu-1"] != "[::1]:7420" || cfg.endpoints["us-1"] != "10.1.0.1:7420" || len(cfg.endpoints) != 2 {
		t.Errorf("endpoints %v", cfg.endpoints)
	}
	if cfg.keys != 5 || cfg.timeout != 2*time.Minute || cfg.output != "text" || cfg.failback || cfg.cleanup || cfg.local != "" {
		t.Errorf("defaults: keys %d, timeout %v, output %q, failback %v, cleanup %v, local %q", cfg.keys, cfg.timeout, cfg.output, cfg.failback, cfg.cleanup, cfg.local)
	}
	if cfg.tlsDir != "/etc/trent/admin" {
		t.Errorf("tls dir %q, want $%s", cfg.tlsDir, tlsDirEnv)
	}

	cfg, err = parseDrillConfig(flagValues{
		"regions": "a,b", "endpoints": "a=h:1,b=h:2", "keys": int32(100), "timeout": "90s",
		"failback": true, "cleanup": true, "output": "json", "query": "RPO.Lost", "tls-dir": "certs",
	}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.keys != 100 || cfg.timeout != 90*time.Second || !cfg.failback || !cfg.cleanup || cfg.output != "json" || cfg.query == nil || cfg.tlsDir != "certs" {
		t.Errorf("given: keys %d, timeout %v, failback %v, cleanup %v, output %q, query %v, tls dir %q", cfg.keys, cfg.timeout, cfg.failback, cfg.cleanup, cfg.output, cfg.query, cfg.tlsDir)
	}
}

func TestDrillConfigRefusesBadFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := flagValues{"regions": "eu-1,us-1", "endpoints": "eu-1=h:1,us-1=h:2"}
	with := func(name string, value any) flagValues {
		f := flagValues{}
		for k, v := range ok {
			f[k] = v
		}
		if value == nil {
			delete(f, name)
		} else {
			f[name] = value
		}
		return f
	}
	for _, tc := range []struct {
		flags flagValues
		want  string
	}{
		{with("regions", "eu-1"), `--regions: want PRIMARY,SURVIVOR (two region names), got "eu-1"`},
		{with("regions", "eu-1,us-1,ap-1"), "--regions: want PRIMARY,SURVIVOR"},
		{with("regions", "eu-1,"), "--regions: want PRIMARY,SURVIVOR"},
		{with("regions", "eu-1,eu-1"), "--regions: the survivor must be another region than the primary eu-1"},
		{with("endpoints", nil), "--endpoints: needed without --local, e.g. --endpoints eu-1=HOST:PORT,us-1=HOST:PORT"},
		{with("endpoints", "eu-1=h:1"), "--endpoints: no endpoint for region us-1"},
		{with("endpoints", "eu-1=h:1,us-1=h:2,ap-1=h:3"), "--endpoints: region ap-1 is not in --regions eu-1,us-1"},
		{with("endpoints", "eu-1=h:1,eu-1=h:2"), "--endpoints: region eu-1 given twice"},
		{with("endpoints", "eu-1,us-1=h:2"), `--endpoints: want REGION=HOST:PORT, got "eu-1"`},
		{with("endpoints", "eu-1=h,us-1=h:2"), `--endpoints: eu-1: want HOST:PORT, got "h"`},
		{with("endpoints", "eu-1=http://h:1,us-1=h:2"), `--endpoints: eu-1: want HOST:PORT, got "http://h:1"`},
		{with("keys", int32(0)), "--keys: want 1 to 100, got 0"},
		{with("keys", int32(101)), "--keys: want 1 to 100, got 101"},
		{with("timeout", "soon"), `--timeout: want a positive duration such as 90s or 5m, got "soon"`},
		{with("timeout", "-1s"), `--timeout: want a positive duration`},
		{with("output", "yaml"), `--output: "yaml" is not json or text`},
		{with("query", "Steps[?Result=='FAIL']"), "--query: unsupported expression"},
		{with("local", filepath.Join(dir, "missing")), "is not a directory (want the DIR of scripts/dev-cluster.sh up DIR --regions ...)"},
		{with("local", file), "is not a directory"},
	} {
		_, err := parseDrillConfig(tc.flags, noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !isUsageError(err) {
			t.Errorf("flags %v: error %v, want a usage error containing %q", tc.flags, err, tc.want)
		}
	}
}

// TestDrillConfigReadsTheDevClusterLayout: with --local DIR the endpoints
// come from DIR/endpoints, the first node of each region, and the client
// certificate from DIR/admin; flags given win.
func TestDrillConfigReadsTheDevClusterLayout(t *testing.T) {
	dir := t.TempDir()
	endpoints := "eu-1 127.0.0.1:4001\neu-1 127.0.0.1:4002\nus-1 127.0.0.1:5001\nus-1 127.0.0.1:5002\nap-1 127.0.0.1:6001\n"
	if err := os.WriteFile(filepath.Join(dir, "endpoints"), []byte(endpoints), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseDrillConfig(flagValues{"regions": "us-1,eu-1", "local": dir}, func(string) string { return "/elsewhere" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.local != dir || cfg.primary != "us-1" {
		t.Errorf("local %q, primary %q", cfg.local, cfg.primary)
	}
	if cfg.endpoints["us-1"] != "127.0.0.1:5001" || cfg.endpoints["eu-1"] != "127.0.0.1:4001" || len(cfg.endpoints) != 2 {
		t.Errorf("endpoints %v", cfg.endpoints)
	}
	if cfg.tlsDir != filepath.Join(dir, "admin") {
		t.Errorf("tls dir %q, want DIR/admin", cfg.tlsDir)
	}

	cfg, err = parseDrillConfig(flagValues{"regions": "us-1,eu-1", "local": dir, "tls-dir": "mine", "endpoints": "us-1=h:1,eu-1=h:2"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.tlsDir != "mine" || cfg.endpoints["us-1"] != "h:1" {
		t.Errorf("given flags lost: tls dir %q, endpoints %v", cfg.tlsDir, cfg.endpoints)
	}

	_, err = parseDrillConfig(flagValues{"regions": "us-1,sa-1", "local": dir}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "lists no node of region sa-1 (was the deployment started with --regions us-1,sa-1?)") {
		t.Errorf("region missing from DIR/endpoints: %v", err)
	}
	_, err = parseDrillConfig(flagValues{"regions": "us-1,eu-1", "local": t.TempDir()}, noEnv)
	if err == nil || !strings.Contains(err.Error(), "endpoints: is the deployment up (scripts/dev-cluster.sh up ") {
		t.Errorf("no DIR/endpoints: %v", err)
	}
}

func TestDrillCommandLine(t *testing.T) {
	r := runKmsctl("", "drill", "--regions", "eu-1")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--regions: want PRIMARY,SURVIVOR") || !strings.Contains(r.stderr, "See 'kmsctl drill --help'.") {
		t.Errorf("bad --regions: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runKmsctl("", "drill", "--endpoints", "eu-1=h:1,us-1=h:2")
	if r.code != exitUsage || !strings.Contains(r.stderr, "the following arguments are required: --regions") {
		t.Errorf("no --regions: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runKmsctl("", "drill", "--help").mustSucceed(t)
	for _, want := range []string{
		"usage: kmsctl drill --regions PRIMARY,SURVIVOR [--endpoints REGION=HOST:PORT,REGION=HOST:PORT] [--keys N] [--local DIR] [--timeout DURATION] [--failback | --no-failback] [--cleanup | --no-cleanup]",
		"Rehearse the loss of a region",
		"update-primary-region --force",
		"  --local DIR ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("drill --help lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Operation:") {
		t.Errorf("drill --help names an operation, but the drill makes many requests:\n%s", r.stdout)
	}
	r = runKmsctl("", "help").mustSucceed(t)
	if !strings.Contains(r.stdout, "Disaster recovery:\n  drill ") {
		t.Errorf("help does not list drill:\n%s", r.stdout)
	}
}

func TestOperatorActionsWaitForEnter(t *testing.T) {
	var prompts strings.Builder
	a := &operatorActions{in: bufio.NewReader(strings.NewReader("\n")), out: &prompts, primary: "eu-1"}
	at, err := a.Cut(t.Context())
	if err != nil || !at.IsZero() {
		t.Errorf("Cut: %v, %v; want the zero time (the drill times the cut itself)", at, err)
	}
	if !strings.Contains(prompts.String(), "Cut the primary region eu-1 off now") {
		t.Errorf("prompt: %q", prompts.String())
	}
	err = a.Restore(t.Context())
	if err == nil || !strings.Contains(err.Error(), "standard input ended before Enter was pressed") {
		t.Errorf("Restore at the end of input: %v", err)
	}
	if !strings.Contains(prompts.String(), "Bring the region eu-1 back") {
		t.Errorf("prompt: %q", prompts.String())
	}
	if err := a.Restore(t.Context()); err == nil {
		t.Error("a second prompt after the end of input succeeded")
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	a = &operatorActions{in: bufio.NewReader(pr), out: io.Discard, primary: "eu-1"}
	ctx, cancel := context.WithCancel(t.Context())
	go cancel()
	if _, err := a.Cut(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Cut with no Enter and a cancelled context: %v", err)
	}
}

// testReport is a drill that passed, without failback.
func testReport() *drillReport {
	return &drillReport{
		RunID: "20250102T030405Z", PrimaryRegion: "eu-1", SurvivorRegion: "us-1",
		Keys:    []string{"mrk-11111111111111111111111111111111", "mrk-22222222222222222222222222222222"},
		CutTime: "2025-01-02T03:04:10.500Z",
		Steps: []*drillStep{
			{Name: "setup", Result: drillOK, DurationMillis: 3210, Notes: []string{"2 keys made in eu-1 and replicated to us-1", "8 ciphertexts made in both regions"}},
			{Name: "cut", Result: drillOK, DurationMillis: 120, Notes: []string{"eu-1 unreachable from 03:04:10.500"}},
			{Name: "failover", Result: drillOK, DurationMillis: 480},
			{Name: "restore", Result: drillOK, DurationMillis: 4020},
			{Name: "convergence", Result: drillOK, DurationMillis: 2300},
			{Name: "verify", Result: drillOK, DurationMillis: 900},
			{Name: "failback", Result: drillSkipped, Notes: []string{"not asked for (--failback)"}},
		},
		RTO:               &drillRTO{FirstWriteMillis: ptrTo(int64(310)), AllWritesMillis: ptrTo(int64(480)), Promoted: 2, Keys: 2},
		RPO:               &drillRPO{VersionsBeforeCut: 4, CiphertextsBeforeCut: 8, MissingVersions: []string{}, UndecryptableCiphertexts: []string{}},
		ConvergenceMillis: ptrTo(int64(2300)),
	}
}

func TestDrillReportText(t *testing.T) {
	r := testReport()
	r.finish()
	if r.Result != drillOK || r.failure() != nil {
		t.Fatalf("result %s, failure %v", r.Result, r.failure())
	}
	var b strings.Builder
	if err := writeDrillReport(&b, r, "text", nil); err != nil {
		t.Fatal(err)
	}
	wantOutput(t, b.String(), `kmsctl drill 20250102T030405Z: primary eu-1, survivor us-1, 2 multi-region keys

STEP         RESULT   TIME   NOTES
setup        OK       3.21s  2 keys made in eu-1 and replicated to us-1
                             8 ciphertexts made in both regions
cut          OK       0.12s  eu-1 unreachable from 03:04:10.500
failover     OK       0.48s
restore      OK       4.02s
convergence  OK       2.30s
verify       OK       0.90s
failback     SKIPPED  -      not asked for (--failback)

RTO          first write 0.31s after the cut, last of 2 keys 0.48s
RPO          0: all 4 key versions and 8 ciphertexts from before the cut are there
Convergence  2.30s after eu-1 answered again
Result       OK
`)
}

func TestDrillReportOfAFailedDrill(t *testing.T) {
	r := testReport()
	r.step("failover").Result = drillFail
	r.step("failover").Errors = []string{"key mrk-22222222222222222222222222222222: UpdatePrimaryRegion --force in us-1: DependencyTimeoutException: no leader"}
	r.RTO = &drillRTO{FirstWriteMillis: ptrTo(int64(310)), Promoted: 1, Keys: 2}
	r.RPO.Lost = 1
	r.RPO.UndecryptableCiphertexts = []string{"mrk-22222222222222222222222222222222: after the rotation, made in eu-1"}
	r.ConvergenceMillis = nil
	r.FailbackMillis = ptrTo(int64(1500))
	r.finish()
	var b strings.Builder
	if err := writeDrillReport(&b, r, "text", nil); err != nil {
		t.Fatal(err)
	}
	_, tail, _ := strings.Cut(b.String(), "\n\nRTO")
	wantOutput(t, "RTO"+tail, `RTO          first write 0.31s after the cut; 1 of 2 keys promoted
RPO          1: of 4 key versions and 8 ciphertexts from before the cut, 0 missing and 1 undecryptable
Convergence  not reached
Failback     1.50s until eu-1 was the primary again in both regions
Result       FAIL

Errors:
  failover: key mrk-22222222222222222222222222222222: UpdatePrimaryRegion --force in us-1: DependencyTimeoutException: no leader
`)
	err := r.failure()
	if err == nil || err.Error() != "DrillFailedException: failover failed (key mrk-22222222222222222222222222222222: "+
		"UpdatePrimaryRegion --force in us-1: DependencyTimeoutException: no leader); RPO 1" {
		t.Errorf("failure: %v", err)
	}
	code, _ := serviceErrorCode(err)
	if code != "DrillFailedException" {
		t.Errorf("kmsctl reports the failure as %s", code)
	}

	// A drill that stopped before verify measured nothing: that fails too.
	r = testReport()
	r.RPO = nil
	r.finish()
	if r.Result != drillFail || !strings.Contains(r.failure().Error(), "RPO not measured") {
		t.Errorf("no RPO: result %s, failure %v", r.Result, r.failure())
	}
}

func TestDrillReportJSON(t *testing.T) {
	r := testReport()
	r.Steps = r.Steps[:2]
	r.KeyDetails = []*drillKeyDetail{{
		KeyID: "mrk-11111111111111111111111111111111", InitialKeyMaterialID: "m0",
		RotationsBeforeCut: map[string][]string{"eu-1": {"m1"}, "us-1": {"m1"}}, EpochBeforeCut: 1,
	}}
	r.finish()
	var b strings.Builder
	if err := writeDrillReport(&b, r, "json", nil); err != nil {
		t.Fatal(err)
	}
	wantOutput(t, b.String(), `{
    "RunId": "20250102T030405Z",
    "PrimaryRegion": "eu-1",
    "SurvivorRegion": "us-1",
    "Keys": [
        "mrk-11111111111111111111111111111111",
        "mrk-22222222222222222222222222222222"
    ],
    "CutTime": "2025-01-02T03:04:10.500Z",
    "Steps": [
        {
            "Name": "setup",
            "Result": "OK",
            "DurationMillis": 3210,
            "Notes": [
                "2 keys made in eu-1 and replicated to us-1",
                "8 ciphertexts made in both regions"
            ]
        },
        {
            "Name": "cut",
            "Result": "OK",
            "DurationMillis": 120,
            "Notes": [
                "eu-1 unreachable from 03:04:10.500"
            ]
        }
    ],
    "RTO": {
        "FirstWriteMillis": 310,
        "AllWritesMillis": 480,
        "KeysPromoted": 2,
        "Keys": 2
    },
    "RPO": {
        "Lost": 0,
        "VersionsBeforeCut": 4,
        "CiphertextsBeforeCut": 8,
        "MissingVersions": [],
        "UndecryptableCiphertexts": []
    },
    "ConvergenceMillis": 2300,
    "KeyDetails": [
        {
            "KeyId": "mrk-11111111111111111111111111111111",
            "InitialKeyMaterialId": "m0",
            "RotationsBeforeCut": {
                "eu-1": [
                    "m1"
                ],
                "us-1": [
                    "m1"
                ]
            },
            "EpochBeforeCut": 1
        }
    ],
    "Result": "OK"
}
`)
	q, err := parseQuery("RTO.AllWritesMillis")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := writeDrillReport(&b, r, "text", q); err != nil {
		t.Fatal(err)
	}
	wantOutput(t, b.String(), "480\n")
}

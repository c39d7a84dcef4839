package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/node"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/regions/membership"
	"github.com/trent-kms/trent/transport/kmspb"
)

// regionActions cut an in-process region by closing every node and
// restore it by starting them all again from their data directories.
type regionActions struct{ r *nodetest.Region }

func (a regionActions) Cut(context.Context) (time.Time, error) {
	var wg sync.WaitGroup
	for i := range a.r.Len() {
		wg.Go(func() { a.r.Stop(i) })
	}
	wg.Wait()
	return time.Now(), nil
}

func (a regionActions) Restore(context.Context) error {
	a.r.RestartAll()
	return nil
}

// drillRegions starts us-1 and eu-1 with nodes nodes each, one CA and one
// gossip keyring, eu-1 joining us-1's WAN pool: the layout of
// dev-cluster.sh --regions us-1,eu-1, in-process. eu-1, the region the
// drill cuts, is the one with a WAN seed: a region restarted from nothing
// rejoins the WAN pool through its seeds, and the first region has none.
func drillRegions(t *testing.T, nodes int) (eu, us *nodetest.Region) {
	t.Helper()
	key, err := node.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "gossip-key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gossip := func(cfg *node.Config) {
		cfg.Gossip = &node.GossipConfig{
			LANBind: "127.0.0.1:0", WANBind: "127.0.0.1:0", KeyFile: keyFile, Voters: 3,
			ServerStabilization: 500 * time.Millisecond, RetryInterval: 100 * time.Millisecond,
			Profile: membership.ProfileFast,
		}
		// Elections on a loaded machine under -race need slack.
		cfg.RaftHeartbeatTimeout = time.Second
		cfg.RaftElectionTimeout = time.Second
		cfg.ReadRetry = 3 * time.Second
		cfg.ProposeTimeout = 5 * time.Second
	}
	start := func(name string, shareCA *nodetest.Region, wan []string) *nodetest.Region {
		r := nodetest.StartRegion(t, nodetest.Options{
			Nodes: 1, Region: name, ShareCA: shareCA,
			Configure: func(_ int, cfg *node.Config) {
				gossip(cfg)
				cfg.Gossip.WANJoin = wan
			},
		})
		seed := r.Node(0).GossipLANAddr()
		for range nodes - 1 {
			r.AddNode(func(cfg *node.Config) {
				cfg.Join = ""
				cfg.Gossip.WANJoin = nil
				cfg.Gossip.RetryJoin = []string{seed}
			})
		}
		return r
	}
	us = start("us-1", nil, nil)
	eu = start("eu-1", us, []string{us.Node(0).GossipWANAddr()})
	return eu, us
}

// failedCut cannot cut the region off.
type failedCut struct{ restored *int }

func (failedCut) Cut(context.Context) (time.Time, error) {
	return time.Time{}, errors.New("the operator gave up")
}

func (a failedCut) Restore(context.Context) error {
	*a.restored++
	return nil
}

// drillAgainst runs a drill with keys keys and timeout against eu and us
// and logs its progress and report.
func drillAgainst(t *testing.T, eu, us *nodetest.Region, actions drillActions, keys int32, timeout string, failback, cleanup bool) *drillReport {
	t.Helper()
	cfg, err := parseDrillConfig(flagValues{
		"regions":   "eu-1,us-1",
		"endpoints": "eu-1=" + eu.Node(0).GRPCAddr() + ",us-1=" + us.Node(us.Len()-1).GRPCAddr(),
		"tls-dir":   eu.AdminTLSDir(),
		"keys":      keys,
		"timeout":   timeout,
		"failback":  failback,
		"cleanup":   cleanup,
	}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	clients, closeClients, err := dialDrillRegions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeClients()
	var progress strings.Builder
	report := runDrill(t.Context(), cfg, clients, actions, &progress)
	var text strings.Builder
	if err := writeDrillReport(&text, report, "text", nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s\nreport:\n%s", progress.String(), text.String())
	return report
}

// assertPendingDeletion checks that a drill's cleanup left each key
// waiting 7 days for deletion: the replica in replicas pending deletion,
// the primary in primaries waiting for it.
func assertPendingDeletion(t *testing.T, keys []string, primaries, replicas *nodetest.Region) {
	t.Helper()
	if len(keys) == 0 {
		t.Error("the drill reports no keys")
	}
	for _, id := range keys {
		for region, want := range map[*nodetest.Region]string{primaries: "PendingReplicaDeletion", replicas: "PendingDeletion"} {
			md := describeKey(t, region, id)
			if md.GetKeyState() != want || md.GetPendingDeletionWindowInDays() != drillCleanupDays {
				t.Errorf("key %s in %s after the cleanup: %s, window %d days; want %s, %d days",
					id, md.GetRegion(), md.GetKeyState(), md.GetPendingDeletionWindowInDays(), want, drillCleanupDays)
			}
		}
	}
}

// describeKey describes id on r's first node.
func describeKey(t *testing.T, r *nodetest.Region, id string) *kmspb.KeyMetadata {
	t.Helper()
	out, err := r.KMS(0).DescribeKey(t.Context(), &kmspb.DescribeKeyRequest{KeyId: id})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", id, err)
	}
	return out.GetKeyMetadata()
}

func stepResults(r *drillReport) string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name+" "+s.Result)
	}
	return strings.Join(out, ", ")
}

// TestDrillAgainstTwoRegions runs the whole drill, failback and cleanup
// included, against two in-process regions, cutting eu-1 by closing its
// nodes: every step passes, nothing from before the cut is lost, and the
// drill's keys are left pending deletion in both regions. A second drill
// whose cut fails stops there, and still restores what it may have cut.
func TestDrillAgainstTwoRegions(t *testing.T) {
	eu, us := drillRegions(t, 3)
	report := drillAgainst(t, eu, us, regionActions{eu}, 2, "20s", true, true)
	if report.Result != drillOK {
		t.Fatalf("drill result %s: %v", report.Result, report.failure())
	}
	if got, want := stepResults(report), "setup OK, cut OK, failover OK, restore OK, convergence OK, verify OK, failback OK, cleanup OK"; got != want {
		t.Errorf("steps: %s, want %s", got, want)
	}
	if report.RPO == nil || report.RPO.Lost != 0 || report.RPO.VersionsBeforeCut != 4 || report.RPO.CiphertextsBeforeCut != 8 {
		t.Errorf("RPO %+v, want 0 lost of 4 versions and 8 ciphertexts", report.RPO)
	}
	if report.RTO == nil || report.RTO.Promoted != 2 || report.RTO.FirstWriteMillis == nil || report.RTO.AllWritesMillis == nil {
		t.Errorf("RTO %+v, want both keys promoted and timed", report.RTO)
	}
	if report.ConvergenceMillis == nil || report.FailbackMillis == nil {
		t.Errorf("convergence %v, failback %v: want both timed", report.ConvergenceMillis, report.FailbackMillis)
	}
	if notes := strings.Join(report.step("failover").Notes, "\n"); !strings.Contains(notes, "2 pending until eu-1 returns") {
		t.Errorf("failover notes do not report the rotation held back:\n%s", notes)
	}
	if notes := strings.Join(report.step("cleanup").Notes, "\n"); !strings.Contains(notes, "2 of 2 keys scheduled for deletion in both regions, replicas first: each replica in 7 days, each primary 7 days after its last replica") {
		t.Errorf("cleanup notes:\n%s", notes)
	}
	// After the failback eu-1 holds the primaries, us-1 the replicas.
	assertPendingDeletion(t, report.Keys, eu, us)

	// The regions are as the drill found them: eu-1 primary again.
	restored := 0
	report = drillAgainst(t, eu, us, failedCut{&restored}, 1, "20s", false, true)
	if got, want := stepResults(report), "setup OK, cut FAIL, failover SKIPPED, restore OK, convergence SKIPPED, verify SKIPPED, failback SKIPPED, cleanup OK"; got != want {
		t.Errorf("steps: %s, want %s", got, want)
	}
	if restored != 1 {
		t.Errorf("restored %d times after a failed cut, want 1", restored)
	}
	// A failed drill still deletes its keys when asked: eu-1 stayed primary.
	assertPendingDeletion(t, report.Keys, eu, us)
	if err := report.failure(); err == nil || !strings.Contains(err.Error(), "cut failed (cutting eu-1 off: the operator gave up)") {
		t.Errorf("failure: %v", err)
	}
}

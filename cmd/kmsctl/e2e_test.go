package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trent-kms/trent/node/nodetest"
)

// kmsctlAgainst runs kmsctl against endpoint and returns stdout, stderr and
// the exit code.
func kmsctlAgainst(t *testing.T, endpoint string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"--endpoint", endpoint}, args...), strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// TestReadmeWalkthroughAgainstARealRegion runs the README's kmsctl steps
// against a real 3-node region, through different nodes, with the region's
// admin client certificate.
func TestReadmeWalkthroughAgainstARealRegion(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	ep := func(i int) string { return r.Node(i).GRPCAddr() }
	admin := func(args ...string) []string { return append([]string{"--tls-dir", r.AdminTLSDir()}, args...) }
	must := func(i int, args ...string) string {
		t.Helper()
		out, errOut, code := kmsctlAgainst(t, ep(i), admin(args...)...)
		if code != 0 {
			t.Fatalf("kmsctl %v: exit %d: %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	key := must(1, "create-key", "--description", "demo", "--query", "KeyMetadata.KeyId", "--output", "text")
	must(2, "create-alias", "--alias-name", "alias/demo", "--target-key-id", key)
	plaintext := filepath.Join(t.TempDir(), "secret.bin")
	if err := os.WriteFile(plaintext, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	ct := must(0, "encrypt", "--key-id", "alias/demo", "--plaintext", "fileb://"+plaintext,
		"--encryption-context", "app=demo", "--query", "CiphertextBlob", "--output", "text")
	pt := must(2, "decrypt", "--ciphertext-blob", ct, "--encryption-context", "app=demo", "--query", "Plaintext", "--output", "text")
	if got, _ := base64.StdEncoding.DecodeString(pt); string(got) != "hello" {
		t.Fatalf("decrypted %q", got)
	}
	if desc := must(0, "describe-key", "--key-id", "alias/demo"); !strings.Contains(desc, `"KeyState": "Enabled"`) {
		t.Fatalf("describe-key output:\n%s", desc)
	}
	must(1, "disable-key", "--key-id", key)
	_, errOut, code := kmsctlAgainst(t, ep(2), admin("encrypt", "--key-id", key, "--plaintext", "aGk=")...)
	if code != 254 || !strings.Contains(errOut, "An error occurred (DisabledException) when calling the Encrypt operation") {
		t.Fatalf("encrypt with a disabled key: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = kmsctlAgainst(t, ep(0), admin("schedule-key-deletion", "--key-id", key, "--pending-window-in-days", "3")...)
	if code != 254 || !strings.Contains(errOut, "ValidationException") || !strings.Contains(errOut, "PendingWindowInDays") {
		t.Fatalf("bad window: exit %d, stderr %q", code, errOut)
	}
	if status := must(0, "cluster", "status"); strings.Count(status, `"Suffrage": "voter"`) != 3 {
		t.Fatalf("cluster status:\n%s", status)
	}
}

// TestMultiRegionWalkthroughAgainstARealRegion runs the README's
// multi-region steps that one region can answer: the replica region never
// exists here, so its replica stays CREATING and holds rotations back.
func TestMultiRegionWalkthroughAgainstARealRegion(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	ep := r.Node(0).GRPCAddr()
	admin := func(args ...string) []string { return append([]string{"--tls-dir", r.AdminTLSDir()}, args...) }
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := kmsctlAgainst(t, ep, admin(args...)...)
		if code != 0 {
			t.Fatalf("kmsctl %v: exit %d: %s", args, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	refused := func(exception string, args ...string) string {
		t.Helper()
		_, errOut, code := kmsctlAgainst(t, ep, admin(args...)...)
		if code != 254 || !strings.Contains(errOut, "An error occurred ("+exception+")") {
			t.Fatalf("kmsctl %v: exit %d, stderr %q; want %s", args, code, errOut, exception)
		}
		return errOut
	}

	key := must("create-key", "--multi-region", "--query", "KeyMetadata.KeyId", "--output", "text")
	if !regexp.MustCompile(`^mrk-[0-9a-f]{32}$`).MatchString(key) {
		t.Fatalf("create-key --multi-region gave id %q", key)
	}
	if got := must("describe-key", "--key-id", key, "--query", "KeyMetadata.MultiRegionConfiguration.MultiRegionKeyType", "--output", "text"); got != "PRIMARY" {
		t.Fatalf("MultiRegionKeyType = %q", got)
	}
	if got := must("replicate-key", "--key-id", key, "--replica-region", "eu-2", "--description", "orders in eu-2",
		"--tags", "TagKey=team,TagValue=orders", "--query", "ReplicaKeyMetadata.KeyState", "--output", "text"); got != "Creating" {
		t.Fatalf("replica KeyState = %q", got)
	}
	desc := must("describe-key", "--key-id", key)
	for _, want := range []string{`"MultiRegion": true`, `"Region": "eu-2"`, `"Status": "CREATING"`, `"ReplicationLagMillis": `, `"AckedChange": 0`} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe-key lacks %s:\n%s", want, desc)
		}
	}

	// The replica is not active yet, --force belongs in the promoted
	// region, and single-region keys have no primary region.
	refused("KMSInvalidStateException", "update-primary-region", "--key-id", key, "--primary-region", "eu-2")
	refused("ValidationException", "update-primary-region", "--key-id", key, "--primary-region", "eu-2", "--force")
	single := must("create-key", "--query", "KeyMetadata.KeyId", "--output", "text")
	refused("KMSInvalidStateException", "update-primary-region", "--key-id", single, "--primary-region", "eu-2")

	// A rotation waits for eu-2, which never confirms it: encrypt keeps
	// using the old key material.
	before := must("describe-key", "--key-id", key, "--query", "KeyMetadata.CurrentKeyMaterialId", "--output", "text")
	must("rotate-key-on-demand", "--key-id", key)
	if got := must("list-key-rotations", "--key-id", key, "--query", "Rotations[0].KeyMaterialId", "--output", "text"); got == before || got == "" {
		t.Fatalf("rotation lists material %q (current %q)", got, before)
	}
	if got := must("describe-key", "--key-id", key, "--query", "KeyMetadata.CurrentKeyMaterialId", "--output", "text"); got != before {
		t.Fatalf("CurrentKeyMaterialId = %s after a rotation eu-2 has not confirmed, want %s", got, before)
	}
	ct := must("encrypt", "--key-id", key, "--plaintext", "aGk=", "--query", "CiphertextBlob", "--output", "text")
	if got := must("decrypt", "--ciphertext-blob", ct, "--query", "KeyMaterialId", "--output", "text"); got != before {
		t.Fatalf("encrypt used material %s, want %s", got, before)
	}
}

package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
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

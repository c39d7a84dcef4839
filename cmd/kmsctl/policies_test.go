package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

// testPolicy is laid out as no JSON encoder would lay it out (tabs, odd
// breaks, HTML characters and non-ASCII text left unescaped), so that any
// re-encoding on the way shows. It lets the admin role do everything, so
// the admin certificate passes the lockout safety check.
const testPolicy = "{\n\t\"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Sid\": \"admins <& é>\", \"Effect\": \"Allow\",\n" +
	"    \"Principal\": {\"Trent\": [\"role/admin\"]},   \"Action\": \"kms:*\", \"Resource\": \"*\"}]\n}\n"

func TestPutKeyPolicyReadsThePolicyAsIs(t *testing.T) {
	ts := startServer(t)
	path := writeTempFile(t, "policy.json", []byte(testPolicy))

	for _, args := range [][]string{
		{"put-key-policy", "--key-id", "alias/app", "--policy", "file://" + path},
		{"put-key-policy", "--key-id", "k", "--policy", testPolicy, "--policy-name", "default", "--bypass-policy-lockout-safety-check"},
		{"put-key-policy", "--key-id", "k", "--policy=" + testPolicy, "--no-bypass-policy-lockout-safety-check"},
	} {
		wantOutput(t, ts.run(args...).mustSucceed(t).stdout, "")
	}
	wantRequests(t, &ts.kms.fake,
		&kmspb.PutKeyPolicyRequest{KeyId: "alias/app", Policy: testPolicy},
		&kmspb.PutKeyPolicyRequest{KeyId: "k", Policy: testPolicy, PolicyName: "default", BypassPolicyLockoutSafetyCheck: true},
		&kmspb.PutKeyPolicyRequest{KeyId: "k", Policy: testPolicy},
	)
}

func TestCreateKeyWithPolicy(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("CreateKey", &kmspb.CreateKeyResponse{KeyMetadata: testKeyMetadata()})
	path := writeTempFile(t, "policy.json", []byte(testPolicy))

	ts.run("create-key", "--policy", "file://"+path, "--bypass-policy-lockout-safety-check").mustSucceed(t)
	ts.run("create-key", "--policy", `{"Version":"2012-10-17"}`).mustSucceed(t)

	wantRequests(t, &ts.kms.fake,
		&kmspb.CreateKeyRequest{Policy: testPolicy, BypassPolicyLockoutSafetyCheck: true},
		&kmspb.CreateKeyRequest{Policy: `{"Version":"2012-10-17"}`},
	)
}

func TestPolicyUsageErrors(t *testing.T) {
	ts := startServer(t)
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, tc := range []struct {
		args []string
		want string // stderr, exactly
	}{
		{[]string{"put-key-policy", "--key-id", "k"},
			"kmsctl: error: the following arguments are required: --policy\nSee 'kmsctl put-key-policy --help'.\n"},
		{[]string{"put-key-policy", "--policy", "{}"},
			"kmsctl: error: the following arguments are required: --key-id\nSee 'kmsctl put-key-policy --help'.\n"},
		{[]string{"put-key-policy", "--key-id", "k", "--policy", "file://" + missing},
			"kmsctl: error: --policy: cannot read file://" + missing + ": no such file or directory\nSee 'kmsctl put-key-policy --help'.\n"},
		{[]string{"put-key-policy", "--key-id", "k", "--policy", "{}", "--bypass-policy-lockout-safety-check=maybe"},
			"kmsctl: error: --bypass-policy-lockout-safety-check: \"maybe\" is not true or false\nSee 'kmsctl put-key-policy --help'.\n"},
		{[]string{"put-key-policy", "--key-id", "k", "--policy", "{}", "--policy", "{}"},
			"kmsctl: error: --policy given more than once\nSee 'kmsctl put-key-policy --help'.\n"},
		{[]string{"create-key", "--policy", "file://" + missing},
			"kmsctl: error: --policy: cannot read file://" + missing + ": no such file or directory\nSee 'kmsctl create-key --help'.\n"},
		{[]string{"get-key-policy"},
			"kmsctl: error: the following arguments are required: --key-id\nSee 'kmsctl get-key-policy --help'.\n"},
		{[]string{"list-key-policies", "--key-id", "k", "--limit", "many"},
			"kmsctl: error: --limit: \"many\" is not a 32-bit whole number\nSee 'kmsctl list-key-policies --help'.\n"},
	} {
		r := ts.run(tc.args...)
		if r.code != exitUsage || r.stderr != tc.want || r.stdout != "" {
			t.Errorf("%q: exit %d\nstderr %q\n  want %q\nstdout %q", tc.args, r.code, r.stderr, tc.want, r.stdout)
		}
	}
	wantRequests(t, &ts.kms.fake)
}

func TestGetKeyPolicyPrintsAWSShape(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("GetKeyPolicy", &kmspb.GetKeyPolicyResponse{Policy: testPolicy, PolicyName: "default"})

	r := ts.run("get-key-policy", "--key-id", "alias/app").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "Policy": "{\n\t\"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Sid\": \"admins <& é>\", \"Effect\": \"Allow\",\n    \"Principal\": {\"Trent\": [\"role/admin\"]},   \"Action\": \"kms:*\", \"Resource\": \"*\"}]\n}\n",
    "PolicyName": "default"
}
`)
	var parsed struct{ Policy string }
	if err := json.Unmarshal([]byte(r.stdout), &parsed); err != nil || parsed.Policy != testPolicy {
		t.Errorf("JSON output gives policy %q, %v; want %q", parsed.Policy, err, testPolicy)
	}

	// As with aws, text output of a lone string is the string and a
	// newline, so "> policy.json" keeps the policy's bytes.
	r = ts.run("get-key-policy", "--key-id", "k", "--policy-name", "default", "--query", "Policy", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, testPolicy+"\n")
	r = ts.run("get-key-policy", "--key-id", "k", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, testPolicy+"\tdefault\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.GetKeyPolicyRequest{KeyId: "alias/app"},
		&kmspb.GetKeyPolicyRequest{KeyId: "k", PolicyName: "default"},
		&kmspb.GetKeyPolicyRequest{KeyId: "k"},
	)
}

func TestListKeyPoliciesPaginatesLikeTheOtherLists(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListKeyPolicies",
		&kmspb.ListKeyPoliciesResponse{PolicyNames: []string{"default"}, NextMarker: "m1", Truncated: true},
		&kmspb.ListKeyPoliciesResponse{PolicyNames: []string{"other"}},
	)
	r := ts.run("list-key-policies", "--key-id", "k").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"PolicyNames\": [\n        \"default\",\n        \"other\"\n    ]\n}\n")
	wantRequests(t, &ts.kms.fake,
		&kmspb.ListKeyPoliciesRequest{KeyId: "k"},
		&kmspb.ListKeyPoliciesRequest{KeyId: "k", Marker: "m1"},
	)

	ts = startServer(t)
	ts.kms.reply("ListKeyPolicies", &kmspb.ListKeyPoliciesResponse{PolicyNames: []string{"default"}})
	r = ts.run("list-key-policies", "--key-id", "k", "--limit", "1").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"PolicyNames\": [\n        \"default\"\n    ],\n    \"Truncated\": false\n}\n")
	r = ts.run("list-key-policies", "--key-id", "k", "--query", "PolicyNames", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "default\n")
	wantRequests(t, &ts.kms.fake,
		&kmspb.ListKeyPoliciesRequest{KeyId: "k", Limit: 1},
		&kmspb.ListKeyPoliciesRequest{KeyId: "k"},
	)
}

// TestKeyPoliciesAgainstARealRegion: a key gets the default policy naming
// its creator and the admin role; a policy put with put-key-policy or
// create-key comes back byte for byte; the lockout safety check and a
// policy that shuts the admin role out are enforced.
func TestKeyPoliciesAgainstARealRegion(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{Nodes: 1})
	as := func(tlsDir string, args ...string) result {
		return runKmsctl("", append([]string{"--endpoint", r.Node(0).GRPCAddr(), "--tls-dir", tlsDir}, args...)...)
	}
	admin := func(args ...string) result { t.Helper(); return as(r.AdminTLSDir(), args...).mustSucceed(t) }

	key := strings.TrimSpace(admin("create-key", "--query", "KeyMetadata.KeyId", "--output", "text").stdout)
	var def struct{ Policy, PolicyName string }
	if err := json.Unmarshal([]byte(admin("get-key-policy", "--key-id", key).stdout), &def); err != nil {
		t.Fatal(err)
	}
	if def.PolicyName != "default" || !strings.Contains(def.Policy, `"admin"`) || !strings.Contains(def.Policy, `"role/admin"`) {
		t.Errorf("default policy %+v; want one naming the creator admin and role/admin", def)
	}
	wantOutput(t, admin("list-key-policies", "--key-id", key).stdout, "{\n    \"PolicyNames\": [\n        \"default\"\n    ]\n}\n")

	path := writeTempFile(t, "policy.json", []byte(testPolicy))
	wantOutput(t, admin("put-key-policy", "--key-id", key, "--policy", "file://"+path).stdout, "")
	wantOutput(t, admin("get-key-policy", "--key-id", key, "--query", "Policy", "--output", "text").stdout, testPolicy+"\n")

	created := strings.TrimSpace(admin("create-key", "--policy", "file://"+path, "--query", "KeyMetadata.KeyId", "--output", "text").stdout)
	wantOutput(t, admin("get-key-policy", "--key-id", created, "--query", "Policy", "--output", "text").stdout, testPolicy+"\n")

	// A policy for someone else only would lock the caller out.
	aliceOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Trent":"alice"},"Action":"kms:*","Resource":"*"}]}`
	res := as(r.AdminTLSDir(), "put-key-policy", "--key-id", key, "--policy", aliceOnly)
	if res.code != exitServiceError || !strings.HasPrefix(res.stderr, "An error occurred (MalformedPolicyDocumentException) when calling the PutKeyPolicy operation: ") {
		t.Errorf("lockout: exit %d, stderr %q", res.code, res.stderr)
	}
	admin("put-key-policy", "--key-id", key, "--policy", aliceOnly, "--bypass-policy-lockout-safety-check")
	res = as(r.AdminTLSDir(), "get-key-policy", "--key-id", key)
	if res.code != exitServiceError || !strings.HasPrefix(res.stderr, "An error occurred (AccessDeniedException) when calling the GetKeyPolicy operation: ") {
		t.Errorf("after locking admin out: exit %d, stderr %q", res.code, res.stderr)
	}
}

package main

import (
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
)

func TestParseConstraints(t *testing.T) {
	file := writeTempFile(t, "constraints.json", []byte(`{"EncryptionContextEquals": {"k": "v"}}`+"\n"))
	subset := func(m map[string]string) *kmspb.GrantConstraints {
		return &kmspb.GrantConstraints{EncryptionContextSubset: m}
	}
	equals := func(m map[string]string) *kmspb.GrantConstraints {
		return &kmspb.GrantConstraints{EncryptionContextEquals: m}
	}
	for _, tc := range []struct {
		text string
		want *kmspb.GrantConstraints
	}{
		// The AWS CLI documentation's own example.
		{"EncryptionContextSubset={Department=IT}", subset(map[string]string{"Department": "IT"})},
		{"EncryptionContextEquals={a=1,b=2}", equals(map[string]string{"a": "1", "b": "2"})},
		// Both kinds parse; the server decides whether it takes both.
		{"EncryptionContextSubset={a=1}, EncryptionContextEquals={b=2}",
			&kmspb.GrantConstraints{EncryptionContextSubset: map[string]string{"a": "1"}, EncryptionContextEquals: map[string]string{"b": "2"}}},
		{` EncryptionContextSubset = { k = v , k2="x, y}" , k3='it\'s \\ ok' } `,
			subset(map[string]string{"k": "v", "k2": "x, y}", "k3": `it's \ ok`})},
		{`EncryptionContextSubset={aws:ebs:id=vol-1,path/x.y#z_-=a=b}`, subset(map[string]string{"aws:ebs:id": "vol-1", "path/x.y#z_-": "a=b"})},
		{`EncryptionContextSubset={a=x\,y,b=é}`, subset(map[string]string{"a": "x,y", "b": "é"})},
		{"EncryptionContextSubset={a=1,}", subset(map[string]string{"a": "1"})},
		{"EncryptionContextSubset={a=,b=''}", subset(map[string]string{"a": "", "b": ""})},
		{`{"EncryptionContextSubset":{"k":"v"}}`, subset(map[string]string{"k": "v"})},
		{` {"EncryptionContextEquals": {"key with spaces": "a,b={c}"}}`, equals(map[string]string{"key with spaces": "a,b={c}"})},
		{"file://" + file, equals(map[string]string{"k": "v"})},
	} {
		got, err := parseConstraints(tc.text)
		if err != nil || !proto.Equal(got, tc.want) {
			t.Errorf("parseConstraints(%q) = %v, %v; want %v", tc.text, got, err, tc.want)
		}
	}
}

// Errors from encoding/json are matched by prefix only: their wording is
// Go's, not ours.
func TestParseConstraintsErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct{ text, want string }{
		{"", `expected EncryptionContextSubset={KEY=VALUE,...} or EncryptionContextEquals={KEY=VALUE,...} at character 1 of ""`},
		{"Subset={a=1}", `unknown constraint "Subset", must be one of: EncryptionContextSubset, EncryptionContextEquals`},
		{"EncryptionContextSubset=a=1", `expected '{', found 'a' at character 25 of "EncryptionContextSubset=a=1"`},
		{"EncryptionContextSubset", `expected '=', found the end at character 24 of "EncryptionContextSubset"`},
		{"EncryptionContextSubset={a=1", `expected ',', found the end at character 29 of "EncryptionContextSubset={a=1"`},
		{"EncryptionContextSubset={a 1}", `expected '=', found '1' at character 28 of "EncryptionContextSubset={a 1}"`},
		{"EncryptionContextSubset={key with spaces=1}", `expected '=', found 'w' at character 30 of "EncryptionContextSubset={key with spaces=1}"`},
		{"EncryptionContextSubset={@=1}", `expected KEY=VALUE (keys are letters, digits and - _ . # / :; write JSON for others) at character 26 of "EncryptionContextSubset={@=1}"`},
		{"EncryptionContextSubset={a=1,a=2}", `key "a" given twice at character 30 of "EncryptionContextSubset={a=1,a=2}"`},
		{"EncryptionContextSubset={a=1},EncryptionContextSubset={b=2}", `EncryptionContextSubset given twice at character 31 of "EncryptionContextSubset={a=1},EncryptionContextSubset={b=2}"`},
		{"EncryptionContextSubset={a='x}", `unterminated '-quoted value at character 28 of "EncryptionContextSubset={a='x}"`},
		{"EncryptionContextSubset={a={b=1}}", `expected a string value (quote it if it starts with {) at character 28 of "EncryptionContextSubset={a={b=1}}"`},
		{"EncryptionContextSubset={a=1} junk", `expected ',', found 'j' at character 31 of "EncryptionContextSubset={a=1} junk"`},
		{"EncryptionContextSubset={}", "EncryptionContextSubset is empty; give at least one KEY=VALUE, or leave out --constraints"},
		{`{"EncryptionContextEquals":{}}`, "EncryptionContextEquals is empty; give at least one KEY=VALUE, or leave out --constraints"},
		{`{}`, "no constraint given: want EncryptionContextSubset or EncryptionContextEquals"},
		{`{"EncryptionContextSubset":null}`, "no constraint given: want EncryptionContextSubset or EncryptionContextEquals"},
		// AWS field names are case-sensitive.
		{`{"encryptionContextSubset":{"k":"v"}}`, `unknown constraint "encryptionContextSubset", must be one of: EncryptionContextSubset, EncryptionContextEquals`},
		{`{"EncryptionContextSubset":{"k":1}}`, "invalid JSON constraints: EncryptionContextSubset: want an object of strings: "},
		{`{"EncryptionContextSubset":{"k":"v"}} {}`, "invalid JSON constraints: more text after the JSON value"},
		{`{"EncryptionContextSubset":`, "invalid JSON constraints: "},
		{"file://" + missing, "cannot read file://" + missing + ": no such file or directory"},
	} {
		if _, err := parseConstraints(tc.text); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parseConstraints(%q) error = %v; want %q", tc.text, err, tc.want)
		}
	}
}

func TestCreateGrantMapsEveryFlag(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("CreateGrant", &kmspb.CreateGrantResponse{GrantToken: "eyJ0b2tlbiI6MX0", GrantId: "0f1e2d"})

	r := ts.run("create-grant", "--key-id", "alias/app",
		"--grantee-principal", "app-1",
		"--operations", "Encrypt", "Decrypt", "GenerateDataKey",
		"--retiring-principal", "ops",
		"--constraints", "EncryptionContextSubset={Department=IT,tenant=acme}",
		"--grant-tokens", "t1", "t2",
		"--name", "app-1/payroll",
		"--dry-run",
	).mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "GrantToken": "eyJ0b2tlbiI6MX0",
    "GrantId": "0f1e2d"
}
`)
	// The AWS CLI's JSON forms, and flags split across the command line.
	r = ts.run("create-grant", "--operations", `["Encrypt","Decrypt"]`, "--key-id", "k",
		"--constraints", `{"EncryptionContextEquals":{"purpose":"a,b"}}`, "--operations", "ReEncryptFrom",
		"--grantee-principal=app-1", "--no-dry-run", "--query", "GrantId", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "0f1e2d\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.CreateGrantRequest{
			KeyId:             "alias/app",
			GranteePrincipal:  "app-1",
			RetiringPrincipal: "ops",
			Operations:        []string{"Encrypt", "Decrypt", "GenerateDataKey"},
			Constraints:       &kmspb.GrantConstraints{EncryptionContextSubset: map[string]string{"Department": "IT", "tenant": "acme"}},
			GrantTokens:       []string{"t1", "t2"},
			Name:              "app-1/payroll",
			DryRun:            true,
		},
		&kmspb.CreateGrantRequest{
			KeyId:            "k",
			GranteePrincipal: "app-1",
			Operations:       []string{"Encrypt", "Decrypt", "ReEncryptFrom"},
			Constraints:      &kmspb.GrantConstraints{EncryptionContextEquals: map[string]string{"purpose": "a,b"}},
		},
	)
}

func TestGrantUsageErrors(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		args []string
		want string // stderr, exactly
	}{
		{[]string{"create-grant", "--key-id", "k"},
			"kmsctl: error: the following arguments are required: --grantee-principal, --operations\nSee 'kmsctl create-grant --help'.\n"},
		{[]string{"create-grant", "--key-id", "k", "--grantee-principal", "p", "--operations"},
			"kmsctl: error: --operations needs a value\nSee 'kmsctl create-grant --help'.\n"},
		{[]string{"create-grant", "--key-id", "k", "--grantee-principal", "p", "--operations", `["Encrypt",1]`},
			"kmsctl: error: --operations: invalid JSON list of strings: json: cannot unmarshal number into Go value of type string\nSee 'kmsctl create-grant --help'.\n"},
		{[]string{"create-grant", "--key-id", "k", "--grantee-principal", "p", "--operations", "Encrypt", "--constraints", "EncryptionContextSubset={}"},
			"kmsctl: error: --constraints: EncryptionContextSubset is empty; give at least one KEY=VALUE, or leave out --constraints\nSee 'kmsctl create-grant --help'.\n"},
		{[]string{"create-grant", "--key-id", "k", "--grantee-principal", "p", "--operations", "Encrypt", "--constraints", "Department=IT"},
			"kmsctl: error: --constraints: unknown constraint \"Department\", must be one of: EncryptionContextSubset, EncryptionContextEquals\nSee 'kmsctl create-grant --help'.\n"},
		// What an unquoted {a=1,b=2} becomes after the shell's brace expansion.
		{[]string{"create-grant", "--key-id", "k", "--grantee-principal", "p", "--operations", "Encrypt", "--constraints", "EncryptionContextSubset=a=1", "EncryptionContextSubset=b=2"},
			"kmsctl: error: unexpected argument \"EncryptionContextSubset=b=2\"\nSee 'kmsctl create-grant --help'.\n"},
		{[]string{"create-grant", "--key-id", "k", "--grantee-principal", "p", "--operations", "Encrypt", "--dry-run=perhaps"},
			"kmsctl: error: --dry-run: \"perhaps\" is not true or false\nSee 'kmsctl create-grant --help'.\n"},
		{[]string{"list-grants"},
			"kmsctl: error: the following arguments are required: --key-id\nSee 'kmsctl list-grants --help'.\n"},
		{[]string{"list-retirable-grants", "--limit", "5"},
			"kmsctl: error: the following arguments are required: --retiring-principal\nSee 'kmsctl list-retirable-grants --help'.\n"},
		{[]string{"retire-grant"},
			"kmsctl: error: give --grant-token, or --key-id and --grant-id\nSee 'kmsctl retire-grant --help'.\n"},
		{[]string{"retire-grant", "--key-id", "k"},
			"kmsctl: error: give --grant-token, or --key-id and --grant-id\nSee 'kmsctl retire-grant --help'.\n"},
		{[]string{"retire-grant", "--grant-id", "g", "--dry-run"},
			"kmsctl: error: give --grant-token, or --key-id and --grant-id\nSee 'kmsctl retire-grant --help'.\n"},
		{[]string{"revoke-grant", "--key-id", "k"},
			"kmsctl: error: the following arguments are required: --grant-id\nSee 'kmsctl revoke-grant --help'.\n"},
		{[]string{"encrypt", "--key-id", "k", "--plaintext", "aGk=", "--grant-tokens"},
			"kmsctl: error: --grant-tokens needs a value\nSee 'kmsctl encrypt --help'.\n"},
	} {
		r := ts.run(tc.args...)
		if r.code != exitUsage || r.stderr != tc.want || r.stdout != "" {
			t.Errorf("%q: exit %d\nstderr %q\n  want %q\nstdout %q", tc.args, r.code, r.stderr, tc.want, r.stdout)
		}
	}
	wantRequests(t, &ts.kms.fake)
}

var testGrants = []*kmspb.GrantListEntry{
	{
		KeyId: testKeyArn, GrantId: "g1", Name: "payroll", CreationDate: 1700000000.25,
		GranteePrincipal: "app-1", RetiringPrincipal: "ops", IssuingPrincipal: "admin",
		Operations:  []string{"Encrypt", "Decrypt"},
		Constraints: &kmspb.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "acme", "Department": "IT"}},
	},
	{
		KeyId: testKeyArn, GrantId: "g2", CreationDate: 1700000001,
		GranteePrincipal: "app-2", IssuingPrincipal: "app-1",
		Operations: []string{"DescribeKey"},
	},
}

// AWS's GrantListEntry field order, absent fields left out; IssuingPrincipal
// stands where AWS has IssuingAccount.
const listGrantsGolden = `{
    "Grants": [
        {
            "KeyId": "` + testKeyArn + `",
            "GrantId": "g1",
            "Name": "payroll",
            "CreationDate": 1700000000.25,
            "GranteePrincipal": "app-1",
            "RetiringPrincipal": "ops",
            "IssuingPrincipal": "admin",
            "Operations": [
                "Encrypt",
                "Decrypt"
            ],
            "Constraints": {
                "EncryptionContextSubset": {
                    "Department": "IT",
                    "tenant": "acme"
                }
            }
        },
        {
            "KeyId": "` + testKeyArn + `",
            "GrantId": "g2",
            "CreationDate": 1700000001,
            "GranteePrincipal": "app-2",
            "IssuingPrincipal": "app-1",
            "Operations": [
                "DescribeKey"
            ]
        }
    ]
}
`

func TestListGrantsFetchesAllPages(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListGrants",
		&kmspb.ListGrantsResponse{Grants: testGrants[:1], NextMarker: "g1", Truncated: true},
		&kmspb.ListGrantsResponse{Grants: testGrants[1:]},
	)

	r := ts.run("list-grants", "--key-id", "alias/app", "--grantee-principal", "app-1", "--grant-id", "g1").mustSucceed(t)

	wantOutput(t, r.stdout, listGrantsGolden)
	wantRequests(t, &ts.kms.fake,
		&kmspb.ListGrantsRequest{KeyId: "alias/app", GranteePrincipal: "app-1", GrantId: "g1"},
		&kmspb.ListGrantsRequest{KeyId: "alias/app", GranteePrincipal: "app-1", GrantId: "g1", Marker: "g1"},
	)
}

func TestListGrantsWithLimitReturnsOnePage(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListGrants", &kmspb.ListGrantsResponse{Grants: testGrants[1:], NextMarker: "g2", Truncated: true})

	r := ts.run("list-grants", "--key-id", "k", "--limit", "1", "--marker", "g1", "--query", "Grants[].GrantId").mustSucceed(t)
	wantOutput(t, r.stdout, "[\n    \"g2\"\n]\n")
	r = ts.run("list-grants", "--key-id", "k", "--limit", "1", "--query", "NextMarker", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "g2\n")
	r = ts.run("list-grants", "--key-id", "k", "--limit", "1", "--query", "Grants[0].Constraints").mustSucceed(t)
	wantOutput(t, r.stdout, "null\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.ListGrantsRequest{KeyId: "k", Limit: 1, Marker: "g1"},
		&kmspb.ListGrantsRequest{KeyId: "k", Limit: 1},
		&kmspb.ListGrantsRequest{KeyId: "k", Limit: 1},
	)
}

func TestListRetirableGrants(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListRetirableGrants",
		&kmspb.ListGrantsResponse{Grants: testGrants[:1], NextMarker: "g1", Truncated: true},
		&kmspb.ListGrantsResponse{Grants: testGrants[1:]},
	)
	r := ts.run("list-retirable-grants", "--retiring-principal", "ops").mustSucceed(t)
	wantOutput(t, r.stdout, listGrantsGolden)

	ts.kms.reply("ListRetirableGrants", &kmspb.ListGrantsResponse{})
	r = ts.run("list-retirable-grants", "--retiring-principal", "ops", "--limit", "10").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"Grants\": [],\n    \"Truncated\": false\n}\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.ListRetirableGrantsRequest{RetiringPrincipal: "ops"},
		&kmspb.ListRetirableGrantsRequest{RetiringPrincipal: "ops", Marker: "g1"},
		&kmspb.ListRetirableGrantsRequest{RetiringPrincipal: "ops", Limit: 10},
	)
}

func TestRetireAndRevokeGrantPrintNothing(t *testing.T) {
	ts := startServer(t)
	for _, args := range [][]string{
		{"retire-grant", "--grant-token", "eyJ0b2tlbiI6MX0"},
		{"retire-grant", "--key-id", "k", "--grant-id", "g1", "--dry-run"},
		{"revoke-grant", "--key-id", "alias/app", "--grant-id", "g1"},
		{"revoke-grant", "--key-id", "k", "--grant-id", "g1", "--dry-run"},
	} {
		wantOutput(t, ts.run(args...).mustSucceed(t).stdout, "")
	}
	wantRequests(t, &ts.kms.fake,
		&kmspb.RetireGrantRequest{GrantToken: "eyJ0b2tlbiI6MX0"},
		&kmspb.RetireGrantRequest{KeyId: "k", GrantId: "g1", DryRun: true},
		&kmspb.RevokeGrantRequest{KeyId: "alias/app", GrantId: "g1"},
		&kmspb.RevokeGrantRequest{KeyId: "k", GrantId: "g1", DryRun: true},
	)
}

// A dry run that would succeed is reported as AWS reports it: as the
// DryRunOperationException error, so scripts test the exception name.
func TestDryRunIsReportedAsAServiceError(t *testing.T) {
	ts := startServer(t)
	ts.kms.fail("RevokeGrant", status.Error(codes.FailedPrecondition, "DryRunOperationException: RevokeGrant would have succeeded"))

	r := ts.run("revoke-grant", "--key-id", "k", "--grant-id", "g1", "--dry-run")

	if r.code != exitServiceError {
		t.Errorf("exit %d, want %d", r.code, exitServiceError)
	}
	wantOutput(t, r.stderr, "An error occurred (DryRunOperationException) when calling the RevokeGrant operation: RevokeGrant would have succeeded\n")
}

func TestGrantTokensOnEveryCommandThatTakesThem(t *testing.T) {
	ts := startServer(t)
	tokens := []string{"t1", "t2", "t3"}
	for _, args := range [][]string{
		{"describe-key", "--key-id", "k"},
		{"encrypt", "--key-id", "k", "--plaintext", "aGk="},
		{"decrypt", "--ciphertext-blob", "aGk="},
		{"re-encrypt", "--ciphertext-blob", "aGk=", "--destination-key-id", "k"},
		{"generate-data-key", "--key-id", "k", "--key-spec", "AES_256"},
		{"generate-data-key-without-plaintext", "--key-id", "k", "--number-of-bytes", "16"},
	} {
		ts.run(append(args, "--grant-tokens", "t1", `["t2","t3"]`)...).mustSucceed(t)
	}
	wantRequests(t, &ts.kms.fake,
		&kmspb.DescribeKeyRequest{KeyId: "k", GrantTokens: tokens},
		&kmspb.EncryptRequest{KeyId: "k", Plaintext: []byte("hi"), GrantTokens: tokens},
		&kmspb.DecryptRequest{CiphertextBlob: []byte("hi"), GrantTokens: tokens},
		&kmspb.ReEncryptRequest{CiphertextBlob: []byte("hi"), DestinationKeyId: "k", GrantTokens: tokens},
		&kmspb.GenerateDataKeyRequest{KeyId: "k", KeySpec: "AES_256", GrantTokens: tokens},
		&kmspb.GenerateDataKeyWithoutPlaintextRequest{KeyId: "k", NumberOfBytes: 16, GrantTokens: tokens},
	)
}

// TestGrantsAgainstARealRegion: a principal the key policy does not name
// uses a key through a grant, within the grant's operations and
// constraints, with its token on another node, until the grant is revoked;
// a grant it may retire, it retires; the region's management events record
// the grant's creation and revocation.
func TestGrantsAgainstARealRegion(t *testing.T) {
	r := nodetest.StartRegion(t, nodetest.Options{})
	aliceDir := filepath.Join(t.TempDir(), "alice")
	runKmsctl("", "ca", "issue-client", "--ca", r.CADir(), "--principal", "alice", "--out", aliceDir).mustSucceed(t)
	as := func(tlsDir string, node int, args ...string) result {
		return runKmsctl("", append([]string{"--endpoint", r.Node(node).GRPCAddr(), "--tls-dir", tlsDir}, args...)...)
	}
	admin := func(node int, args ...string) result {
		t.Helper()
		return as(r.AdminTLSDir(), node, args...).mustSucceed(t)
	}
	alice := func(node int, args ...string) result { t.Helper(); return as(aliceDir, node, args...) }
	wantRefused := func(res result, exception, op string) {
		t.Helper()
		if want := "An error occurred (" + exception + ") when calling the " + op + " operation: "; res.code != exitServiceError || !strings.HasPrefix(res.stderr, want) {
			t.Errorf("exit %d, stderr %q; want exit %d and %q", res.code, res.stderr, exitServiceError, want)
		}
	}
	plaintext := base64.StdEncoding.EncodeToString([]byte("payroll secret"))

	key := strings.TrimSpace(admin(0, "create-key", "--description", "shared", "--query", "KeyMetadata.KeyId", "--output", "text").stdout)
	wantRefused(alice(1, "encrypt", "--key-id", key, "--plaintext", plaintext, "--encryption-context", "app=payroll"), "AccessDeniedException", "Encrypt")

	// The region's first grant, through a node that does not lead: the
	// node answers with a token though the command was applied elsewhere.
	follower := r.Followers()[0]
	var grant createGrantOutput
	out := admin(follower, "create-grant", "--key-id", key, "--grantee-principal", "alice", "--operations", "Encrypt", "Decrypt",
		"--constraints", "EncryptionContextSubset={app=payroll}", "--name", "alice-payroll").stdout
	if err := json.Unmarshal([]byte(out), &grant); err != nil || grant.GrantToken == "" || grant.GrantID == "" {
		t.Fatalf("create-grant printed %q (%v)", out, err)
	}

	var listed struct{ Grants []grantJSON }
	if err := json.Unmarshal([]byte(admin(1, "list-grants", "--key-id", key).stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed.Grants) != 1 {
		t.Fatalf("list-grants shows %d grants, want 1: %+v", len(listed.Grants), listed.Grants)
	}
	g := listed.Grants[0]
	if g.GrantID != grant.GrantID || g.Name != "alice-payroll" || g.GranteePrincipal != "alice" || g.IssuingPrincipal != "admin" ||
		!slices.Equal(g.Operations, []string{"Encrypt", "Decrypt"}) || !strings.HasSuffix(g.KeyID, key) || g.CreationDate == 0 ||
		g.Constraints == nil || g.Constraints.EncryptionContextSubset["app"] != "payroll" {
		t.Errorf("list-grants shows %+v", g)
	}
	if res := admin(2, "list-grants", "--key-id", key, "--grantee-principal", "bob", "--query", "Grants"); res.stdout != "[]\n" {
		t.Errorf("grants for bob: %q", res.stdout)
	}

	// The grantee encrypts with the grant token on a node other than the
	// one that created the grant.
	res := alice(2, "encrypt", "--key-id", key, "--plaintext", plaintext, "--encryption-context", "app=payroll",
		"--grant-tokens", grant.GrantToken, "--query", "CiphertextBlob", "--output", "text").mustSucceed(t)
	ciphertext := strings.TrimSpace(res.stdout)
	res = alice(1, "decrypt", "--ciphertext-blob", ciphertext, "--encryption-context", "app=payroll", "--query", "Plaintext", "--output", "text").mustSucceed(t)
	if got := strings.TrimSpace(res.stdout); got != plaintext {
		t.Errorf("alice decrypted %q, want %q", got, plaintext)
	}
	// Outside the grant's constraints and operations.
	wantRefused(alice(1, "encrypt", "--key-id", key, "--plaintext", plaintext, "--encryption-context", "app=other", "--grant-tokens", grant.GrantToken),
		"AccessDeniedException", "Encrypt")
	wantRefused(alice(1, "disable-key", "--key-id", key), "AccessDeniedException", "DisableKey")
	// Only the key policy can allow revoking.
	wantRefused(alice(0, "revoke-grant", "--key-id", key, "--grant-id", grant.GrantID), "AccessDeniedException", "RevokeGrant")

	wantRefused(as(r.AdminTLSDir(), 1, "revoke-grant", "--key-id", key, "--grant-id", grant.GrantID, "--dry-run"), "DryRunOperationException", "RevokeGrant")
	wantOutput(t, admin(1, "revoke-grant", "--key-id", key, "--grant-id", grant.GrantID).stdout, "")
	wantOutput(t, admin(0, "list-grants", "--key-id", key).stdout, "{\n    \"Grants\": []\n}\n")
	wantRefused(alice(2, "encrypt", "--key-id", key, "--plaintext", plaintext, "--encryption-context", "app=payroll"), "AccessDeniedException", "Encrypt")
	// The token of a revoked grant is worthless; the server may name either
	// the token or the denial.
	res = alice(0, "encrypt", "--key-id", key, "--plaintext", plaintext, "--encryption-context", "app=payroll", "--grant-tokens", grant.GrantToken)
	if res.code != exitServiceError || (!strings.Contains(res.stderr, "AccessDeniedException") && !strings.Contains(res.stderr, "InvalidGrantTokenException")) {
		t.Errorf("encrypt with a revoked grant's token: exit %d, stderr %q", res.code, res.stderr)
	}

	// A grant alice may retire: she finds it and retires it by its token.
	out = admin(0, "create-grant", "--key-id", key, "--grantee-principal", "alice", "--operations", "DescribeKey",
		"--retiring-principal", "alice", "--query", "GrantToken", "--output", "text").stdout
	retirable := strings.TrimSpace(out)
	res = alice(1, "list-retirable-grants", "--retiring-principal", "alice", "--query", "Grants[].Operations[]", "--output", "text").mustSucceed(t)
	wantOutput(t, res.stdout, "DescribeKey\n")
	alice(2, "describe-key", "--key-id", key, "--grant-tokens", retirable).mustSucceed(t)
	wantOutput(t, alice(2, "retire-grant", "--grant-token", retirable).mustSucceed(t).stdout, "")
	wantOutput(t, admin(0, "list-grants", "--key-id", key).stdout, "{\n    \"Grants\": []\n}\n")
	wantRefused(alice(0, "describe-key", "--key-id", key), "AccessDeniedException", "DescribeKey")

	// The region recorded who created and who revoked the first grant.
	var events struct{ Events []managementEventJSON }
	if err := json.Unmarshal([]byte(admin(2, "audit", "management").stdout), &events); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range events.Events {
		if e.GrantID == grant.GrantID {
			ops = append(ops, e.Principal+" "+e.Operation)
		}
	}
	if !slices.Equal(ops, []string{"admin CreateGrant", "admin RevokeGrant"}) {
		t.Errorf("management events of the grant: %q; all events: %+v", ops, events.Events)
	}
	wantRefused(alice(0, "audit", "management"), "AccessDeniedException", "ManagementEvents")
}

package main

import (
	"net"
	"strings"
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		r := runKmsctl("", args...)
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, g := range commandGroups {
			for _, c := range g.commands {
				if !strings.Contains(r.stdout, "\n  "+c.name+" ") {
					t.Errorf("%v does not list %q", args, c.name)
				}
			}
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, g := range commandGroups {
		for _, c := range g.commands {
			name := strings.Fields(c.name)
			for _, args := range [][]string{append(name, "--help"), append([]string{"help"}, name...)} {
				r := runKmsctl("", args...)
				if r.code != exitOK || !strings.HasPrefix(r.stdout, "usage: kmsctl "+c.name) {
					t.Errorf("%v: exit %d, stdout %q", args, r.code, r.stdout)
				}
				for _, f := range c.flags {
					if !strings.Contains(r.stdout, "--"+f.name) {
						t.Errorf("%v does not mention --%s", args, f.name)
					}
				}
			}
		}
	}
}

func TestHelpWinsOverMissingFlags(t *testing.T) {
	r := runKmsctl("", "encrypt", "--plaintext", "fileb:///does/not/exist", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "--plaintext BLOB") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // stderr, exactly
	}{
		{nil, "kmsctl: error: no command given\nSee 'kmsctl help'.\n"},
		{[]string{"frobnicate"}, "kmsctl: error: unknown command \"frobnicate\"\nSee 'kmsctl help'.\n"},
		{[]string{"help", "frobnicate"}, "kmsctl: error: unknown command \"frobnicate\"\nSee 'kmsctl help'.\n"},
		{[]string{"describe-key", "--key-id", "k", "--bogus"}, "kmsctl: error: unknown flag --bogus\nSee 'kmsctl describe-key --help'.\n"},
		{[]string{"describe-key", "--key-id", "k", "-v"}, "kmsctl: error: unknown flag -v\nSee 'kmsctl describe-key --help'.\n"},
		{[]string{"--key-id", "k", "describe-key"}, "kmsctl: error: unknown flag --key-id\nSee 'kmsctl help'.\n"},
		{[]string{"describe-key", "k"}, "kmsctl: error: unexpected argument \"k\"\nSee 'kmsctl describe-key --help'.\n"},
		{[]string{"describe-key", "--key-id"}, "kmsctl: error: --key-id needs a value\nSee 'kmsctl describe-key --help'.\n"},
		{[]string{"encrypt", "--plaintext", "aGk="}, "kmsctl: error: the following arguments are required: --key-id\nSee 'kmsctl encrypt --help'.\n"},
		{[]string{"update-alias"}, "kmsctl: error: the following arguments are required: --alias-name, --target-key-id\nSee 'kmsctl update-alias --help'.\n"},
		{[]string{"list-keys", "--output", "table"}, "kmsctl: error: --output: \"table\" is not json or text\nSee 'kmsctl list-keys --help'.\n"},
		{[]string{"list-keys", "--query", "Keys[?KeyId=='x']"}, "kmsctl: error: --query: unsupported expression \"Keys[?KeyId=='x']\" (kmsctl supports field paths such as KeyMetadata.KeyId, Keys[0].KeyId and Aliases[].AliasName)\nSee 'kmsctl list-keys --help'.\n"},
		{[]string{"--output", "text", "list-keys", "--output", "json"}, "kmsctl: error: --output given more than once\nSee 'kmsctl list-keys --help'.\n"},
		{[]string{"--endpoint", "http://localhost", "list-keys"}, "kmsctl: error: --endpoint: want HOST:PORT, got \"http://localhost\"\nSee 'kmsctl list-keys --help'.\n"},
	} {
		r := runKmsctl("", tc.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d", tc.args, r.code, exitUsage)
		}
		if r.stderr != tc.want || r.stdout != "" {
			t.Errorf("%q:\nstderr %q\n  want %q\nstdout %q", tc.args, r.stderr, tc.want, r.stdout)
		}
	}
}

func TestGlobalFlagsGoBeforeOrAfterTheCommand(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("DescribeKey", &kmspb.DescribeKeyResponse{KeyMetadata: testKeyMetadata()})

	for _, args := range [][]string{
		{"--endpoint", ts.endpoint, "--output=text", "--query", "KeyMetadata.Arn", "describe-key", "--key-id", "k"},
		{"describe-key", "--query", "KeyMetadata.Arn", "--key-id", "k", "--endpoint=" + ts.endpoint, "--output", "text"},
	} {
		r := runKmsctl("", args...).mustSucceed(t)
		wantOutput(t, r.stdout, testKeyArn+"\n")
	}
}

func TestEndpointFromEnvironment(t *testing.T) {
	ts := startServer(t)
	t.Setenv("TRENT_ENDPOINT", ts.endpoint)

	runKmsctl("", "enable-key", "--key-id", "k").mustSucceed(t)
	wantRequests(t, &ts.kms.fake, &kmspb.EnableKeyRequest{KeyId: "k"})

	// --endpoint wins over the environment.
	other := startServer(t)
	runKmsctl("", "--endpoint", other.endpoint, "enable-key", "--key-id", "k").mustSucceed(t)
	wantRequests(t, &other.kms.fake, &kmspb.EnableKeyRequest{KeyId: "k"})
}

func TestUnreachableServerIsAServiceError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := lis.Addr().String()
	lis.Close() // nothing listens there now

	r := runKmsctl("", "--endpoint", endpoint, "describe-key", "--key-id", "k")

	if r.code != exitServiceError {
		t.Errorf("exit %d, want %d", r.code, exitServiceError)
	}
	want := "An error occurred (DependencyTimeoutException) when calling the DescribeKey operation: "
	if !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, endpoint) {
		t.Errorf("stderr %q, want prefix %q and the endpoint", r.stderr, want)
	}
}

package main

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/trent-kms/trent/transport/kmspb"
)

var testSpecs = []flagSpec{
	{name: "key-id", kind: kindString},
	{name: "limit", kind: kindInt},
	{name: "multi-region", kind: kindBool},
	{name: "tags", kind: kindTags},
	{name: "tag-keys", kind: kindList},
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string][]string
	}{
		{[]string{"--key-id", "k"}, map[string][]string{"key-id": {"k"}}},
		{[]string{"--key-id=k=v"}, map[string][]string{"key-id": {"k=v"}}},
		// "=" lets a value start with "--"; a negative number needs no "=".
		{[]string{"--key-id=--odd", "--limit", "-5"}, map[string][]string{"key-id": {"--odd"}, "limit": {"-5"}}},
		{[]string{"--tag-keys", "a", "b", "--key-id", "k", "--tag-keys", "c"},
			map[string][]string{"tag-keys": {"a", "b", "c"}, "key-id": {"k"}}},
		{[]string{"--tag-keys=a", "b"}, map[string][]string{"tag-keys": {"a", "b"}}},
		{[]string{"--multi-region"}, map[string][]string{"multi-region": {"true"}}},
		{[]string{"--no-multi-region"}, map[string][]string{"multi-region": {"false"}}},
		{[]string{"--multi-region=false"}, map[string][]string{"multi-region": {"false"}}},
		{nil, map[string][]string{}},
	} {
		got, err := parseFlags(tc.args, testSpecs)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseFlags(%q) = %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "unknown flag --nope"},
		{[]string{"--no-key-id"}, "unknown flag --no-key-id"},
		{[]string{"-k"}, "unknown flag -k"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"--multi-region", "true"}, `unexpected argument "true"`},
		{[]string{"--key-id"}, "--key-id needs a value"},
		{[]string{"--key-id", "--limit", "3"}, "--key-id needs a value"},
		{[]string{"--tags"}, "--tags needs a value"},
		{[]string{"--key-id", "a", "--key-id=b"}, "--key-id given more than once"},
		{[]string{"--multi-region", "--no-multi-region"}, "--multi-region given more than once"},
		{[]string{"--no-multi-region=true"}, "--no-multi-region takes no value"},
	} {
		_, err := parseFlags(tc.args, testSpecs)
		if !isUsageError(err) || err.Error() != tc.want {
			t.Errorf("parseFlags(%q) error = %v; want usage error %q", tc.args, err, tc.want)
		}
	}
}

func TestParseFlagsHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--key-id", "k", "help"}} {
		if _, err := parseFlags(args, testSpecs); !errors.Is(err, errHelp) {
			t.Errorf("parseFlags(%q) error = %v; want errHelp", args, err)
		}
	}
}

func TestConvertFlags(t *testing.T) {
	raw := map[string][]string{
		"key-id":       {"k"},
		"limit":        {"10"},
		"multi-region": {"true"},
		"tags":         {"TagKey=a,TagValue=1", `[{"TagKey":"b","TagValue":""}]`},
		"tag-keys":     {"x", `["y","z"]`},
	}
	got, err := convertFlags(raw, testSpecs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.str("key-id") != "k" || got.int32("limit") != 10 || !got.bool("multi-region") {
		t.Errorf("scalars: %v", got)
	}
	if l := got.list("tag-keys"); !reflect.DeepEqual(l, []string{"x", "y", "z"}) {
		t.Errorf("tag-keys = %q", l)
	}
	wantTags := []*kmspb.Tag{{TagKey: "a", TagValue: "1"}, {TagKey: "b"}}
	tags := got.tags("tags")
	if len(tags) != len(wantTags) || !proto.Equal(tags[0], wantTags[0]) || !proto.Equal(tags[1], wantTags[1]) {
		t.Errorf("tags = %v", tags)
	}
}

// Errors from encoding/json are matched by prefix only: their wording is
// Go's, not ours.
func TestConvertFlagsErrors(t *testing.T) {
	specs := []flagSpec{{name: "key-id", kind: kindString, required: true}, {name: "limit", kind: kindInt}, {name: "tag-keys", kind: kindList}}
	for _, tc := range []struct {
		raw  map[string][]string
		want string
	}{
		{map[string][]string{"limit": {"x"}}, "the following arguments are required: --key-id"},
		{map[string][]string{"key-id": {"k"}, "limit": {"ten"}}, `--limit: "ten" is not a 32-bit whole number`},
		{map[string][]string{"key-id": {"k"}, "limit": {"3000000000"}}, `--limit: "3000000000" is not a 32-bit whole number`},
		{map[string][]string{"key-id": {"k"}, "tag-keys": {"[1]"}}, "--tag-keys: invalid JSON list of strings: "},
	} {
		_, err := convertFlags(tc.raw, specs, nil)
		if !isUsageError(err) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("convertFlags(%v) error = %v; want %q", tc.raw, err, tc.want)
		}
	}
}

func TestReadBlob(t *testing.T) {
	raw := writeTempFile(t, "raw.bin", secret)
	b64 := writeTempFile(t, "text.b64", []byte("AP9oaYAK\n"))
	for _, tc := range []struct {
		text, stdin string
	}{
		{"AP9oaYAK", ""},
		{"AP9o\naYAK", ""}, // as wrapped by base64(1)
		{"fileb://" + raw, ""},
		{"file://" + b64, ""},
		{"fileb://-", string(secret)},
	} {
		got, err := readBlob(tc.text, strings.NewReader(tc.stdin))
		if err != nil || string(got) != string(secret) {
			t.Errorf("readBlob(%q) = %q, %v; want %q", tc.text, got, err, secret)
		}
	}
}

func TestReadBlobErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct{ text, want string }{
		{"fileb://" + missing, "cannot read fileb://" + missing + ": no such file or directory"},
		{"file://" + missing, "cannot read file://" + missing + ": no such file or directory"},
		{"hello world", "not valid base64 (illegal base64 data at input byte 5); give raw bytes as fileb://PATH"},
	} {
		if _, err := readBlob(tc.text, nil); err == nil || err.Error() != tc.want {
			t.Errorf("readBlob(%q) error = %v; want %q", tc.text, err, tc.want)
		}
	}
}

func TestParseContext(t *testing.T) {
	file := writeTempFile(t, "ctx.json", []byte(`{"k": "v"}`+"\n"))
	for _, tc := range []struct {
		text string
		want map[string]string
	}{
		{"k=v", map[string]string{"k": "v"}},
		{"k=v, k2 = v2", map[string]string{"k": "v", "k2": "v2"}},
		{"k=a=b,empty=", map[string]string{"k": "a=b", "empty": ""}},
		{`{"k":"v,w", " spaced ":"x"}`, map[string]string{"k": "v,w", " spaced ": "x"}},
		{"file://" + file, map[string]string{"k": "v"}},
	} {
		got, err := parseContext(tc.text)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseContext(%q) = %v, %v; want %v", tc.text, got, err, tc.want)
		}
	}
}

func TestParseContextErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"k", `"k" is not KEY=VALUE (write {"key":"value"} JSON for values with commas)`},
		{"a=1,b", `"b" is not KEY=VALUE (write {"key":"value"} JSON for values with commas)`},
		{"=v", `"=v" is not KEY=VALUE (write {"key":"value"} JSON for values with commas)`},
		{"a=1,a=2", `key "a" given twice`},
		{`{"n":1}`, "invalid JSON object of strings: "},
	} {
		if _, err := parseContext(tc.text); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parseContext(%q) error = %v; want %q", tc.text, err, tc.want)
		}
	}
}

func TestParseTagsErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"TagKey=a", `"TagKey=a": want TagKey=KEY,TagValue=VALUE`},
		{"Key=a,Value=b", `"Key=a,Value=b": want TagKey=KEY,TagValue=VALUE (write a JSON list for values with commas)`},
		{`[{"TagKey":"a"}]`, "each JSON tag needs TagKey and TagValue"},
		{`[{"TagKey":1}]`, "invalid JSON list of tags: "},
	} {
		if _, err := parseTags(tc.text); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("parseTags(%q) error = %v; want %q", tc.text, err, tc.want)
		}
	}
}

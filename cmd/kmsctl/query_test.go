package main

import (
	"strings"
	"testing"
)

// keyIDJSON stands for any output object in query and text-format tests.
type keyIDJSON struct {
	KeyID string `json:"KeyId"`
	Arn   string `json:"Arn,omitempty"`
}

func TestQuery(t *testing.T) {
	v := struct {
		KeyMetadata keyIDJSON
		Keys        []keyIDJSON
		Nested      [][]int
	}{
		KeyMetadata: keyIDJSON{"k", "arn:k"},
		Keys:        []keyIDJSON{{KeyID: "k1"}, {KeyID: "k2"}, {KeyID: "k3"}},
		Nested:      [][]int{{1, 2}, {3}},
	}
	for _, tc := range []struct{ query, want string }{
		{"", "{\n    \"KeyMetadata\": {\n        \"KeyId\": \"k\",\n        \"Arn\": \"arn:k\"\n    },"},
		{"KeyMetadata", "{\n    \"KeyId\": \"k\",\n    \"Arn\": \"arn:k\"\n}\n"},
		{"KeyMetadata.Arn", "\"arn:k\"\n"},
		{"KeyMetadata.Missing", "null\n"},
		{"KeyMetadata.Arn.Deeper", "null\n"},
		{"Keys[1].KeyId", "\"k2\"\n"},
		{"Keys[-1].KeyId", "\"k3\"\n"},
		{"Keys[9].KeyId", "null\n"},
		{"Keys[].KeyId", "[\n    \"k1\",\n    \"k2\",\n    \"k3\"\n]\n"},
		{"Keys[*].Missing", "[]\n"},
		{"Nested[]", "[\n    1,\n    2,\n    3\n]\n"},
		{"Nested[*]", "[\n    [\n        1,\n        2\n    ],\n    [\n        3\n    ]\n]\n"},
		{"Nested[0][1]", "2\n"},
	} {
		q, err := parseQuery(tc.query)
		if err != nil {
			t.Fatalf("parseQuery(%q): %v", tc.query, err)
		}
		var b strings.Builder
		if err := printResult(&b, v, "json", q); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(b.String(), tc.want) {
			t.Errorf("--query %q:\n got %q\nwant %q", tc.query, b.String(), tc.want)
		}
	}
}

func TestQueryRejectsWhatItCannotAnswer(t *testing.T) {
	for _, text := range []string{
		"Keys[?KeyId=='k']", "Keys[0", "Keys]", ".KeyId", "KeyMetadata.", "a..b",
		"length(Keys)", "{Id: KeyId}", "`literal`", "\"quoted\"", "Keys | [0]", "Keys[0]x", "9lives",
	} {
		if _, err := parseQuery(text); !isUsageError(err) {
			t.Errorf("parseQuery(%q) error = %v; want a usage error", text, err)
		}
	}
}

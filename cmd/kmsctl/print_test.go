package main

import (
	"strings"
	"testing"
)

func TestPrintKeepsFieldOrderAndLeavesHTMLAlone(t *testing.T) {
	v := struct {
		Zed   string   `json:"Zed"`
		Alpha []byte   `json:"Alpha"`
		Empty []string `json:"Empty"`
		Obj   struct{} `json:"Obj"`
	}{Zed: "<a&b>", Alpha: []byte("hi"), Empty: []string{}}

	var b strings.Builder
	if err := printResult(&b, v, "json", nil); err != nil {
		t.Fatal(err)
	}
	wantOutput(t, b.String(), `{
    "Zed": "<a&b>",
    "Alpha": "aGk=",
    "Empty": [],
    "Obj": {}
}
`)
}

func TestPrintNothingForEmptyAnswer(t *testing.T) {
	var b strings.Builder
	if err := printResult(&b, nil, "text", query{{field: "X"}}); err != nil || b.Len() != 0 {
		t.Errorf("printed %q, %v", b.String(), err)
	}
}

// The cases follow what "aws --output text" prints for the same data.
func TestTextFormat(t *testing.T) {
	type entry struct {
		KeyID  string `json:"KeyId"`
		KeyArn string `json:"KeyArn"`
	}
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"scalar", struct{ A string }{"x"}, "x\n"},
		{"bools like Python", struct{ A, B bool }{true, false}, "True\tFalse\n"},
		{"list of objects", struct {
			Keys []entry
		}{[]entry{{"k1", "arn1"}, {"k2", "arn2"}}}, "KEYS\tarn1\tk1\nKEYS\tarn2\tk2\n"},
		// Columns in key order: Arn, CreationDate, CustomerMasterKeySpec,
		// Description, Enabled, KeyId, KeyManager, KeySpec, KeyState, ...
		{"nested object then its list", keyMetadataOutput{&keyMetadataJSON{
			KeyID: "k", Arn: "arn", CreationDate: 1.5, Enabled: true, KeyUsage: "ENCRYPT_DECRYPT",
			KeyState: "Enabled", Origin: "AWS_KMS", KeyManager: "CUSTOMER", KeySpec: "SYMMETRIC_DEFAULT",
			CustomerMasterKeySpec: "SYMMETRIC_DEFAULT", EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"}, ProtectionLevel: "SOFTWARE",
		}}, "KEYMETADATA\tarn\t1.5\tSYMMETRIC_DEFAULT\t\tTrue\tk\tCUSTOMER\tSYMMETRIC_DEFAULT\tEnabled\tENCRYPT_DECRYPT\tFalse\tAWS_KMS\tSOFTWARE\n" +
			"ENCRYPTIONALGORITHMS\tSYMMETRIC_DEFAULT\n"},
		{"empty list prints nothing", struct{ Keys []entry }{[]entry{}}, ""},
	} {
		var b strings.Builder
		if err := printResult(&b, tc.v, "text", nil); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, b.String(), tc.want)
		}
	}
}

func TestTextFormatOfQueriedLists(t *testing.T) {
	v := struct{ Keys []keyIDJSON }{[]keyIDJSON{{KeyID: "k1"}, {KeyID: "k2"}}}
	for _, tc := range []struct{ query, want string }{
		{"Keys[].KeyId", "k1\tk2\n"}, // a bare list of scalars: one line
		{"Keys[0]", "k1\n"},
		{"Nope", "None\n"},
	} {
		q, err := parseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := printResult(&b, v, "text", q); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.query, b.String(), tc.want)
		}
	}
}

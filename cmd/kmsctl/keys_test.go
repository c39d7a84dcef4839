package main

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/transport/kmspb"
)

const (
	testKeyID  = "1234abcd-12ab-34cd-56ef-1234567890ab"
	testKeyArn = "arn:trent:kms:local:000000000000:key/" + testKeyID
)

func testKeyMetadata() *kmspb.KeyMetadata {
	return &kmspb.KeyMetadata{
		KeyId:                testKeyID,
		Arn:                  testKeyArn,
		CreationDate:         1700000000.123,
		Enabled:              true,
		Description:          "payroll <prod> & co",
		KeyUsage:             "ENCRYPT_DECRYPT",
		KeyState:             "Enabled",
		Origin:               "AWS_KMS",
		KeyManager:           "CUSTOMER",
		KeySpec:              "SYMMETRIC_DEFAULT",
		EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"},
		ProtectionLevel:      "HSM",
		CurrentKeyMaterialId: "m-1",
		Region:               "local",
	}
}

// The AWS CLI's layout: four-space indent, HTML characters left alone,
// absent DeletionDate and PendingDeletionWindowInDays omitted.
const describeKeyGolden = `{
    "KeyMetadata": {
        "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Arn": "arn:trent:kms:local:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "CreationDate": 1700000000.123,
        "Enabled": true,
        "Description": "payroll <prod> & co",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": [
            "SYMMETRIC_DEFAULT"
        ],
        "MultiRegion": false,
        "ProtectionLevel": "HSM",
        "CurrentKeyMaterialId": "m-1"
    }
}
`

func TestDescribeKeyPrintsAWSShape(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("DescribeKey", &kmspb.DescribeKeyResponse{KeyMetadata: testKeyMetadata()})

	r := ts.run("describe-key", "--key-id", "alias/payroll").mustSucceed(t)

	wantOutput(t, r.stdout, describeKeyGolden)
	wantRequests(t, &ts.kms.fake, &kmspb.DescribeKeyRequest{KeyId: "alias/payroll"})
}

func TestDescribeKeyPendingDeletionShowsDeletionFields(t *testing.T) {
	ts := startServer(t)
	m := testKeyMetadata()
	m.Enabled, m.KeyState, m.DeletionDate, m.PendingDeletionWindowInDays = false, "PendingDeletion", 1702592000, 30
	ts.kms.reply("DescribeKey", &kmspb.DescribeKeyResponse{KeyMetadata: m})

	r := ts.run("describe-key", "--key-id", testKeyID, "--query", "KeyMetadata.DeletionDate").mustSucceed(t)
	wantOutput(t, r.stdout, "1702592000\n")
	r = ts.run("describe-key", "--key-id", testKeyID, "--query", "KeyMetadata.PendingDeletionWindowInDays", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "30\n")
}

func TestCreateKeyMapsEveryFlag(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("CreateKey", &kmspb.CreateKeyResponse{KeyMetadata: testKeyMetadata()})

	r := ts.run("create-key",
		"--description=payroll <prod> & co",
		"--key-usage", "ENCRYPT_DECRYPT",
		"--key-spec", "SYMMETRIC_DEFAULT",
		"--protection-level", "HSM",
		"--tags", "TagKey=team,TagValue=payroll", "TagKey=env,TagValue=prod",
		"--multi-region",
	).mustSucceed(t)

	wantOutput(t, r.stdout, describeKeyGolden)
	wantRequests(t, &ts.kms.fake, &kmspb.CreateKeyRequest{
		Description:     "payroll <prod> & co",
		KeyUsage:        "ENCRYPT_DECRYPT",
		KeySpec:         "SYMMETRIC_DEFAULT",
		ProtectionLevel: "HSM",
		Tags:            []*kmspb.Tag{{TagKey: "team", TagValue: "payroll"}, {TagKey: "env", TagValue: "prod"}},
		MultiRegion:     true,
	})
}

func TestCreateKeyWithoutFlagsLeavesDefaultsToServer(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("CreateKey", &kmspb.CreateKeyResponse{KeyMetadata: testKeyMetadata()})

	r := ts.run("create-key", "--no-multi-region", "--query", "KeyMetadata.KeyId", "--output", "text").mustSucceed(t)

	wantOutput(t, r.stdout, testKeyID+"\n")
	wantRequests(t, &ts.kms.fake, &kmspb.CreateKeyRequest{})
}

func TestListKeysFetchesAllPages(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListKeys",
		&kmspb.ListKeysResponse{Keys: []*kmspb.KeyListEntry{{KeyId: "k1", KeyArn: "arn:k1"}}, NextMarker: "m1", Truncated: true},
		&kmspb.ListKeysResponse{Keys: []*kmspb.KeyListEntry{{KeyId: "k2", KeyArn: "arn:k2"}}},
	)

	r := ts.run("list-keys").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "Keys": [
        {
            "KeyId": "k1",
            "KeyArn": "arn:k1"
        },
        {
            "KeyId": "k2",
            "KeyArn": "arn:k2"
        }
    ]
}
`)
	wantRequests(t, &ts.kms.fake, &kmspb.ListKeysRequest{}, &kmspb.ListKeysRequest{Marker: "m1"})
}

func TestListKeysWithLimitReturnsOnePage(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListKeys", &kmspb.ListKeysResponse{
		Keys: []*kmspb.KeyListEntry{{KeyId: "k2", KeyArn: "arn:k2"}}, NextMarker: "m2", Truncated: true,
	})

	r := ts.run("list-keys", "--limit", "1", "--marker=m1").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "Keys": [
        {
            "KeyId": "k2",
            "KeyArn": "arn:k2"
        }
    ],
    "NextMarker": "m2",
    "Truncated": true
}
`)
	wantRequests(t, &ts.kms.fake, &kmspb.ListKeysRequest{Limit: 1, Marker: "m1"})
}

func TestListKeysEmptyPrintsEmptyList(t *testing.T) {
	ts := startServer(t)
	r := ts.run("list-keys").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"Keys\": []\n}\n")
}

// A server that says "truncated" without a new marker would otherwise be
// asked for the same page forever.
func TestListKeysStopsWhenMarkerDoesNotAdvance(t *testing.T) {
	for _, marker := range []string{"", "same"} {
		ts := startServer(t)
		ts.kms.reply("ListKeys", &kmspb.ListKeysResponse{NextMarker: marker, Truncated: true})

		r := ts.run("list-keys")

		if r.code != exitServiceError {
			t.Fatalf("marker %q: exit %d, want %d", marker, r.code, exitServiceError)
		}
		if n := len(ts.kms.received()); n > 2 {
			t.Errorf("marker %q: sent %d requests, want at most 2", marker, n)
		}
	}
}

func TestKeyStateCommandsPrintNothing(t *testing.T) {
	ts := startServer(t)
	for _, args := range [][]string{
		{"update-key-description", "--key-id", "k", "--description", "new text"},
		{"enable-key", "--key-id", "k"},
		{"disable-key", "--key-id", "k"},
	} {
		wantOutput(t, ts.run(args...).mustSucceed(t).stdout, "")
	}
	wantRequests(t, &ts.kms.fake,
		&kmspb.UpdateKeyDescriptionRequest{KeyId: "k", Description: "new text"},
		&kmspb.EnableKeyRequest{KeyId: "k"},
		&kmspb.DisableKeyRequest{KeyId: "k"},
	)
}

func TestScheduleAndCancelKeyDeletion(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ScheduleKeyDeletion", &kmspb.ScheduleKeyDeletionResponse{
		KeyId: testKeyArn, DeletionDate: 1700604800.5, KeyState: "PendingDeletion", PendingWindowInDays: 7,
	})
	ts.kms.reply("CancelKeyDeletion", &kmspb.CancelKeyDeletionResponse{KeyId: testKeyArn})

	r := ts.run("schedule-key-deletion", "--key-id", testKeyID, "--pending-window-in-days", "7").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "KeyId": "`+testKeyArn+`",
    "DeletionDate": 1700604800.5,
    "KeyState": "PendingDeletion",
    "PendingWindowInDays": 7
}
`)
	r = ts.run("cancel-key-deletion", "--key-id", testKeyID).mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"KeyId\": \""+testKeyArn+"\"\n}\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.ScheduleKeyDeletionRequest{KeyId: testKeyID, PendingWindowInDays: 7},
		&kmspb.CancelKeyDeletionRequest{KeyId: testKeyID},
	)
}

func TestScheduleKeyDeletionRejectsNonNumericWindow(t *testing.T) {
	ts := startServer(t)
	r := ts.run("schedule-key-deletion", "--key-id", "k", "--pending-window-in-days", "week")
	wantOutput(t, r.stderr, "kmsctl: error: --pending-window-in-days: \"week\" is not a 32-bit whole number\nSee 'kmsctl schedule-key-deletion --help'.\n")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	wantRequests(t, &ts.kms.fake)
}

func TestServiceErrorIsPrintedAWSStyle(t *testing.T) {
	ts := startServer(t)
	ts.kms.fail("DescribeKey", status.Error(codes.NotFound, "NotFoundException: Key 'alias/nope' does not exist"))

	r := ts.run("describe-key", "--key-id", "alias/nope")

	if r.code != exitServiceError {
		t.Errorf("exit %d, want %d", r.code, exitServiceError)
	}
	wantOutput(t, r.stdout, "")
	wantOutput(t, r.stderr, "An error occurred (NotFoundException) when calling the DescribeKey operation: Key 'alias/nope' does not exist\n")
}

func TestServiceErrorWithoutPrefixUsesCodeMapping(t *testing.T) {
	ts := startServer(t)
	ts.kms.fail("DisableKey", status.Error(codes.FailedPrecondition, "key is pending deletion"))

	r := ts.run("disable-key", "--key-id", "k")

	if r.code != exitServiceError {
		t.Errorf("exit %d, want %d", r.code, exitServiceError)
	}
	wantOutput(t, r.stderr, "An error occurred (KMSInvalidStateException) when calling the DisableKey operation: key is pending deletion\n")
}

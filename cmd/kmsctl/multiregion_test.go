package main

import (
	"strings"
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

const testMRKID = "mrk-1234abcd12ab34cd56ef1234567890ab"

func ptr[T any](v T) *T { return &v }

// testPrimaryMetadata is a multi-region primary in eu-1 with an active
// replica and one the replicator cannot reach.
func testPrimaryMetadata() *kmspb.KeyMetadata {
	return &kmspb.KeyMetadata{
		KeyId:                testMRKID,
		Arn:                  "arn:trent:kms:eu-1::key/" + testMRKID,
		CreationDate:         1700000000,
		Enabled:              true,
		KeyUsage:             "ENCRYPT_DECRYPT",
		KeyState:             "Enabled",
		Origin:               "TRENT",
		KeyManager:           "CUSTOMER",
		KeySpec:              "SYMMETRIC_DEFAULT",
		EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"},
		MultiRegion:          true,
		ProtectionLevel:      "SOFTWARE",
		CurrentKeyMaterialId: "m-1",
		Region:               "eu-1",
		MultiRegionConfiguration: &kmspb.MultiRegionConfiguration{
			MultiRegionKeyType: "PRIMARY",
			PrimaryKey:         &kmspb.MultiRegionKey{Arn: "arn:trent:kms:eu-1::key/" + testMRKID, Region: "eu-1"},
			ReplicaKeys: []*kmspb.MultiRegionKey{
				{Arn: "arn:trent:kms:us-2::key/" + testMRKID, Region: "us-2", Status: "ACTIVE", ReplicationLagMillis: ptr(int64(0)), AckedChange: ptr(uint64(7))},
				{Arn: "arn:trent:kms:ap-3::key/" + testMRKID, Region: "ap-3", Status: "CREATING", ReplicationLagMillis: ptr(int64(1500)), AckedChange: ptr(uint64(0)),
					LastError: "dial ap-3: connection refused"},
			},
			Epoch:        2,
			SharedChange: 7,
		},
	}
}

const describePrimaryGolden = `{
    "KeyMetadata": {
        "KeyId": "mrk-1234abcd12ab34cd56ef1234567890ab",
        "Arn": "arn:trent:kms:eu-1::key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "CreationDate": 1700000000,
        "Enabled": true,
        "Description": "",
        "KeyUsage": "ENCRYPT_DECRYPT",
        "KeyState": "Enabled",
        "Origin": "TRENT",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "EncryptionAlgorithms": [
            "SYMMETRIC_DEFAULT"
        ],
        "MultiRegion": true,
        "MultiRegionConfiguration": {
            "MultiRegionKeyType": "PRIMARY",
            "PrimaryKey": {
                "Arn": "arn:trent:kms:eu-1::key/mrk-1234abcd12ab34cd56ef1234567890ab",
                "Region": "eu-1"
            },
            "ReplicaKeys": [
                {
                    "Arn": "arn:trent:kms:us-2::key/mrk-1234abcd12ab34cd56ef1234567890ab",
                    "Region": "us-2",
                    "Status": "ACTIVE",
                    "ReplicationLagMillis": 0,
                    "AckedChange": 7
                },
                {
                    "Arn": "arn:trent:kms:ap-3::key/mrk-1234abcd12ab34cd56ef1234567890ab",
                    "Region": "ap-3",
                    "Status": "CREATING",
                    "ReplicationLagMillis": 1500,
                    "AckedChange": 0,
                    "LastError": "dial ap-3: connection refused"
                }
            ],
            "Epoch": 2,
            "SharedChange": 7
        },
        "ProtectionLevel": "SOFTWARE",
        "CurrentKeyMaterialId": "m-1"
    }
}
`

func TestDescribeKeyPrintsMultiRegionConfiguration(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("DescribeKey", &kmspb.DescribeKeyResponse{KeyMetadata: testPrimaryMetadata()})

	r := ts.run("describe-key", "--key-id", testMRKID).mustSucceed(t)
	wantOutput(t, r.stdout, describePrimaryGolden)

	r = ts.run("describe-key", "--key-id", testMRKID, "--query", "KeyMetadata.MultiRegionConfiguration.ReplicaKeys[].Status", "--output", "text").mustSucceed(t)
	wantOutput(t, r.stdout, "ACTIVE\tCREATING\n")
}

func TestDescribeKeyOfAReplicaShowsWhatItApplied(t *testing.T) {
	ts := startServer(t)
	m := testPrimaryMetadata()
	m.Arn, m.Region = "arn:trent:kms:us-2::key/"+testMRKID, "us-2"
	m.MultiRegionConfiguration = &kmspb.MultiRegionConfiguration{
		MultiRegionKeyType: "REPLICA",
		PrimaryKey:         &kmspb.MultiRegionKey{Arn: "arn:trent:kms:eu-1::key/" + testMRKID, Region: "eu-1"},
		ReplicaKeys:        []*kmspb.MultiRegionKey{{Arn: "arn:trent:kms:us-2::key/" + testMRKID, Region: "us-2", Status: "ACTIVE"}},
		Epoch:              2,
		AppliedChange:      7,
		AppliedTime:        1700000100.5,
	}
	ts.kms.reply("DescribeKey", &kmspb.DescribeKeyResponse{KeyMetadata: m})

	r := ts.run("describe-key", "--key-id", testMRKID, "--query", "KeyMetadata.MultiRegionConfiguration").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "MultiRegionKeyType": "REPLICA",
    "PrimaryKey": {
        "Arn": "arn:trent:kms:eu-1::key/mrk-1234abcd12ab34cd56ef1234567890ab",
        "Region": "eu-1"
    },
    "ReplicaKeys": [
        {
            "Arn": "arn:trent:kms:us-2::key/mrk-1234abcd12ab34cd56ef1234567890ab",
            "Region": "us-2",
            "Status": "ACTIVE"
        }
    ],
    "Epoch": 2,
    "AppliedChange": 7,
    "AppliedTime": 1700000100.5
}
`)
}

func TestDescribeKeyOfASingleRegionKeyHasNoConfiguration(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("DescribeKey", &kmspb.DescribeKeyResponse{KeyMetadata: testKeyMetadata()})

	r := ts.run("describe-key", "--key-id", testKeyID).mustSucceed(t)
	if strings.Contains(r.stdout, "MultiRegionConfiguration") {
		t.Fatalf("single-region key output has a MultiRegionConfiguration:\n%s", r.stdout)
	}
}

func TestReplicateKeyMapsEveryFlag(t *testing.T) {
	ts := startServer(t)
	replica := testPrimaryMetadata()
	replica.Arn, replica.Region, replica.KeyState, replica.Enabled, replica.Description = "arn:trent:kms:us-2::key/"+testMRKID, "us-2", "Creating", false, "orders, us"
	replica.MultiRegionConfiguration = &kmspb.MultiRegionConfiguration{
		MultiRegionKeyType: "REPLICA",
		PrimaryKey:         &kmspb.MultiRegionKey{Arn: "arn:trent:kms:eu-1::key/" + testMRKID, Region: "eu-1"},
		ReplicaKeys:        []*kmspb.MultiRegionKey{{Arn: "arn:trent:kms:us-2::key/" + testMRKID, Region: "us-2", Status: "CREATING"}},
		Epoch:              1,
	}
	ts.kms.reply("ReplicateKey", &kmspb.ReplicateKeyResponse{
		ReplicaKeyMetadata: replica,
		ReplicaPolicy:      `{"Version":"2012-10-17"}`,
		ReplicaTags:        []*kmspb.Tag{{TagKey: "team", TagValue: "orders"}},
	})
	policyFile := writeTempFile(t, "policy.json", []byte(`{"Version":"2012-10-17"}`))

	r := ts.run("replicate-key", "--key-id", testMRKID, "--replica-region", "us-2",
		"--policy", "file://"+policyFile, "--bypass-policy-lockout-safety-check",
		"--description", "orders, us", "--tags", "TagKey=team,TagValue=orders", "TagKey=env,TagValue=prod",
	).mustSucceed(t)

	wantRequests(t, &ts.kms.fake, &kmspb.ReplicateKeyRequest{
		KeyId:                          testMRKID,
		ReplicaRegion:                  "us-2",
		Policy:                         `{"Version":"2012-10-17"}`,
		BypassPolicyLockoutSafetyCheck: true,
		Description:                    "orders, us",
		Tags:                           []*kmspb.Tag{{TagKey: "team", TagValue: "orders"}, {TagKey: "env", TagValue: "prod"}},
	})
	for _, want := range []string{
		"{\n    \"ReplicaKeyMetadata\": {\n        \"KeyId\": \"" + testMRKID + "\",\n",
		`"KeyState": "Creating",`,
		`"MultiRegionKeyType": "REPLICA",`,
		`"ReplicaPolicy": "{\"Version\":\"2012-10-17\"}",`,
		"\"ReplicaTags\": [\n        {\n            \"TagKey\": \"team\",\n            \"TagValue\": \"orders\"\n        }\n    ]\n}\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestReplicateKeyWithoutTagsPrintsAnEmptyList(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ReplicateKey", &kmspb.ReplicateKeyResponse{ReplicaKeyMetadata: testPrimaryMetadata(), ReplicaPolicy: "{}"})

	r := ts.run("replicate-key", "--key-id", testMRKID, "--replica-region", "us-2", "--query", "ReplicaTags").mustSucceed(t)

	wantOutput(t, r.stdout, "[]\n")
	wantRequests(t, &ts.kms.fake, &kmspb.ReplicateKeyRequest{KeyId: testMRKID, ReplicaRegion: "us-2"})
}

func TestUpdatePrimaryRegionMapsFlagsAndPrintsNothing(t *testing.T) {
	ts := startServer(t)

	r := ts.run("update-primary-region", "--key-id", testMRKID, "--primary-region", "us-2").mustSucceed(t)
	wantOutput(t, r.stdout, "")
	ts.run("update-primary-region", "--key-id", testMRKID, "--primary-region", "us-2", "--force").mustSucceed(t)

	wantRequests(t, &ts.kms.fake,
		&kmspb.UpdatePrimaryRegionRequest{KeyId: testMRKID, PrimaryRegion: "us-2"},
		&kmspb.UpdatePrimaryRegionRequest{KeyId: testMRKID, PrimaryRegion: "us-2", Force: true},
	)
}

func TestMultiRegionCommandsNeedTheirRegion(t *testing.T) {
	ts := startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replicate-key", "--key-id", testMRKID}, "--replica-region"},
		{[]string{"update-primary-region", "--key-id", testMRKID, "--force"}, "--primary-region"},
	} {
		r := ts.run(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "the following arguments are required: "+tc.want) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
	}
	wantRequests(t, &ts.kms.fake)
}

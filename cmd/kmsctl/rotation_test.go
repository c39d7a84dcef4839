package main

import (
	"testing"

	"github.com/trent-kms/trent/transport/kmspb"
)

func TestRotationCommandsMapFlags(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("RotateKeyOnDemand", &kmspb.RotateKeyOnDemandResponse{KeyId: "arn:k"})

	wantOutput(t, ts.run("enable-key-rotation", "--key-id", "k", "--rotation-period-in-days", "180").mustSucceed(t).stdout, "")
	wantOutput(t, ts.run("disable-key-rotation", "--key-id", "k").mustSucceed(t).stdout, "")
	wantOutput(t, ts.run("rotate-key-on-demand", "--key-id", "k").mustSucceed(t).stdout, "{\n    \"KeyId\": \"arn:k\"\n}\n")

	wantRequests(t, &ts.kms.fake,
		&kmspb.EnableKeyRotationRequest{KeyId: "k", RotationPeriodInDays: 180},
		&kmspb.DisableKeyRotationRequest{KeyId: "k"},
		&kmspb.RotateKeyOnDemandRequest{KeyId: "k"},
	)
}

func TestGetKeyRotationStatus(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("GetKeyRotationStatus",
		&kmspb.GetKeyRotationStatusResponse{KeyRotationEnabled: true, KeyId: "arn:k", RotationPeriodInDays: 365, NextRotationDate: 1731536000},
		&kmspb.GetKeyRotationStatusResponse{KeyId: "arn:k"},
	)

	r := ts.run("get-key-rotation-status", "--key-id", "k").mustSucceed(t)
	wantOutput(t, r.stdout, `{
    "KeyRotationEnabled": true,
    "KeyId": "arn:k",
    "RotationPeriodInDays": 365,
    "NextRotationDate": 1731536000
}
`)
	// Disabled: AWS leaves out the period and the next date.
	r = ts.run("get-key-rotation-status", "--key-id", "k").mustSucceed(t)
	wantOutput(t, r.stdout, "{\n    \"KeyRotationEnabled\": false,\n    \"KeyId\": \"arn:k\"\n}\n")

	wantRequests(t, &ts.kms.fake, &kmspb.GetKeyRotationStatusRequest{KeyId: "k"}, &kmspb.GetKeyRotationStatusRequest{KeyId: "k"})
}

func TestListKeyRotations(t *testing.T) {
	ts := startServer(t)
	ts.kms.reply("ListKeyRotations",
		&kmspb.ListKeyRotationsResponse{Rotations: []*kmspb.KeyRotation{
			{KeyId: "arn:k", KeyMaterialId: "m-1", RotationDate: 1700000000, RotationType: "AUTOMATIC"},
		}, NextMarker: "p2", Truncated: true},
		&kmspb.ListKeyRotationsResponse{Rotations: []*kmspb.KeyRotation{
			{KeyId: "arn:k", KeyMaterialId: "m-2", RotationDate: 1700000100.25, RotationType: "ON_DEMAND"},
		}},
	)

	r := ts.run("list-key-rotations", "--key-id", "k").mustSucceed(t)

	wantOutput(t, r.stdout, `{
    "Rotations": [
        {
            "KeyId": "arn:k",
            "KeyMaterialId": "m-1",
            "RotationDate": 1700000000,
            "RotationType": "AUTOMATIC"
        },
        {
            "KeyId": "arn:k",
            "KeyMaterialId": "m-2",
            "RotationDate": 1700000100.25,
            "RotationType": "ON_DEMAND"
        }
    ]
}
`)
	wantRequests(t, &ts.kms.fake,
		&kmspb.ListKeyRotationsRequest{KeyId: "k"},
		&kmspb.ListKeyRotationsRequest{KeyId: "k", Marker: "p2"},
	)
}

package main

import "github.com/trent-kms/trent/transport/kmspb"

var rotationCommands = []*command{
	{
		name: "enable-key-rotation", op: "EnableKeyRotation",
		summary: "Rotate a key's material automatically.",
		flags: []flagSpec{keyIDFlag,
			{name: "rotation-period-in-days", kind: kindInt, metavar: "DAYS", usage: "days between rotations, 90 to 2560 (default 365)"},
		},
		run: func(r *request) (any, error) {
			_, err := r.kms.EnableKeyRotation(r.ctx, &kmspb.EnableKeyRotationRequest{
				KeyId:                r.flags.str("key-id"),
				RotationPeriodInDays: r.flags.int32("rotation-period-in-days"),
			})
			return nil, err
		},
	},
	{
		name: "disable-key-rotation", op: "DisableKeyRotation",
		summary: "Stop rotating a key automatically.",
		flags:   []flagSpec{keyIDFlag},
		run: func(r *request) (any, error) {
			_, err := r.kms.DisableKeyRotation(r.ctx, &kmspb.DisableKeyRotationRequest{KeyId: r.flags.str("key-id")})
			return nil, err
		},
	},
	{
		name: "get-key-rotation-status", op: "GetKeyRotationStatus",
		summary: "Show whether and when a key rotates.",
		flags:   []flagSpec{keyIDFlag},
		run: func(r *request) (any, error) {
			resp, err := r.kms.GetKeyRotationStatus(r.ctx, &kmspb.GetKeyRotationStatusRequest{KeyId: r.flags.str("key-id")})
			if err != nil {
				return nil, err
			}
			return rotationStatusOutput{
				KeyRotationEnabled:        resp.GetKeyRotationEnabled(),
				KeyID:                     resp.GetKeyId(),
				RotationPeriodInDays:      resp.GetRotationPeriodInDays(),
				NextRotationDate:          resp.GetNextRotationDate(),
				OnDemandRotationStartDate: resp.GetOnDemandRotationStartDate(),
			}, nil
		},
	},
	{
		name: "rotate-key-on-demand", op: "RotateKeyOnDemand",
		summary: "Rotate a key's material now.",
		flags:   []flagSpec{keyIDFlag},
		run: func(r *request) (any, error) {
			resp, err := r.kms.RotateKeyOnDemand(r.ctx, &kmspb.RotateKeyOnDemandRequest{KeyId: r.flags.str("key-id")})
			if err != nil {
				return nil, err
			}
			return keyIDOutput{resp.GetKeyId()}, nil
		},
	},
	{
		name: "list-key-rotations", op: "ListKeyRotations",
		summary: "List the past rotations of a key.",
		flags:   []flagSpec{keyIDFlag, limitFlag, markerFlag},
		run: func(r *request) (any, error) {
			out := listKeyRotationsOutput{Rotations: []rotationJSON{}}
			var err error
			out.NextMarker, out.Truncated, err = paginate(r, func(marker string) (string, bool, error) {
				resp, err := r.kms.ListKeyRotations(r.ctx, &kmspb.ListKeyRotationsRequest{
					KeyId:  r.flags.str("key-id"),
					Limit:  r.flags.int32("limit"),
					Marker: marker,
				})
				for _, rot := range resp.GetRotations() {
					out.Rotations = append(out.Rotations, rotationJSON{
						KeyID:         rot.GetKeyId(),
						KeyMaterialID: rot.GetKeyMaterialId(),
						RotationDate:  rot.GetRotationDate(),
						RotationType:  rot.GetRotationType(),
					})
				}
				return resp.GetNextMarker(), resp.GetTruncated(), err
			})
			return out, err
		},
	},
}

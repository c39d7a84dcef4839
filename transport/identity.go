package transport

import (
	"context"

	"github.com/trent-kms/trent/transport/policy"
)

// callerFrom identifies who sent a request. Until connections carry client
// certificates every caller is the local administrator.
func callerFrom(context.Context) policy.Caller {
	return policy.Caller{Principal: "local", Roles: []string{policy.AdminRole}}
}

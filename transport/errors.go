package transport

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trent-kms/trent/cluster"
	"github.com/trent-kms/trent/crypto"
	"github.com/trent-kms/trent/fsm"
	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/transport/policy"
)

// Errors the handlers return; each maps to one gRPC code and one AWS KMS
// exception name (see statusFor).
var (
	// ErrValidation: a request field is missing or out of range.
	ErrValidation = errors.New("invalid request")
	// ErrInvalidCiphertext: the ciphertext blob is malformed, altered, or
	// does not verify with the given encryption context.
	ErrInvalidCiphertext = errors.New("invalid ciphertext")
	// ErrIncorrectKey: the ciphertext was made under another key than the
	// one the caller named.
	ErrIncorrectKey = errors.New("incorrect key")
	// ErrDisabled: the key is disabled.
	ErrDisabled = errors.New("key disabled")
	// ErrInvalidKeyUsage: the key's usage does not allow the operation.
	ErrInvalidKeyUsage = errors.New("invalid key usage")
	// ErrUnsupported: the operation or option is not supported yet.
	ErrUnsupported = errors.New("unsupported operation")
	// ErrAccessDenied: the principal may not perform the action.
	ErrAccessDenied = errors.New("access denied")
	// ErrNotServing: this node cannot serve now (no leader reachable, or
	// the outcome of a write is unknown); the caller may retry.
	ErrNotServing = errors.New("not serving")
	// ErrInvalidGrantToken: a grant token is malformed, was not issued by
	// this region, is too old, or names a retired or revoked grant.
	ErrInvalidGrantToken = errors.New("invalid grant token")
	// ErrDryRun: a DryRun request passed every check and changed nothing.
	ErrDryRun = errors.New("dry run")
	// ErrThrottled: the principal is over its request rate limit (see
	// RateLimits); the caller may retry after backing off.
	ErrThrottled = errors.New("rate exceeded")
)

type statusMapping struct {
	code      codes.Code
	exception string
}

// Order matters: the first sentinel err wraps decides the status.
var statusTable = []struct {
	err error
	statusMapping
}{
	{ErrValidation, statusMapping{codes.InvalidArgument, "ValidationException"}},
	{ErrInvalidCiphertext, statusMapping{codes.InvalidArgument, "InvalidCiphertextException"}},
	{ErrIncorrectKey, statusMapping{codes.InvalidArgument, "IncorrectKeyException"}},
	{ErrDisabled, statusMapping{codes.FailedPrecondition, "DisabledException"}},
	{ErrInvalidKeyUsage, statusMapping{codes.FailedPrecondition, "InvalidKeyUsageException"}},
	{ErrUnsupported, statusMapping{codes.Unimplemented, "UnsupportedOperationException"}},
	{ErrAccessDenied, statusMapping{codes.PermissionDenied, "AccessDeniedException"}},
	{ErrNotServing, statusMapping{codes.Unavailable, "KMSInternalException"}},
	{ErrInvalidGrantToken, statusMapping{codes.InvalidArgument, "InvalidGrantTokenException"}},
	{ErrDryRun, statusMapping{codes.FailedPrecondition, "DryRunOperationException"}},
	{policy.ErrMalformed, statusMapping{codes.InvalidArgument, "MalformedPolicyDocumentException"}},
	{policy.ErrLockout, statusMapping{codes.InvalidArgument, "MalformedPolicyDocumentException"}},
	{policy.ErrInvalidGrant, statusMapping{codes.InvalidArgument, "ValidationException"}},
	{ErrThrottled, statusMapping{codes.ResourceExhausted, "ThrottlingException"}},
	{fsm.ErrNotFound, statusMapping{codes.NotFound, "NotFoundException"}},
	{fsm.ErrAlreadyExists, statusMapping{codes.AlreadyExists, "AlreadyExistsException"}},
	{fsm.ErrInvalidState, statusMapping{codes.FailedPrecondition, "KMSInvalidStateException"}},
	{fsm.ErrInvalidArgument, statusMapping{codes.InvalidArgument, "ValidationException"}},
	{fsm.ErrLimitExceeded, statusMapping{codes.ResourceExhausted, "LimitExceededException"}},
	{crypto.ErrInvalidContext, statusMapping{codes.InvalidArgument, "ValidationException"}},
	{cluster.ErrNoLeader, statusMapping{codes.Unavailable, "KMSInternalException"}},
	{cluster.ErrNotLeader, statusMapping{codes.Unavailable, "KMSInternalException"}},
	{cluster.ErrShutdown, statusMapping{codes.Unavailable, "KMSInternalException"}},
	{hsm.ErrUnavailable, statusMapping{codes.Unavailable, "DependencyTimeoutException"}},
	{context.DeadlineExceeded, statusMapping{codes.DeadlineExceeded, "DependencyTimeoutException"}},
	{context.Canceled, statusMapping{codes.Canceled, "KMSInternalException"}},
}

// statusFor converts a handler error into a gRPC status whose message starts
// with the AWS exception name ("NotFoundException: key ... does not exist"),
// so clients can recover the name. Unknown errors become Internal without
// their text: it may come from a dependency and is logged instead.
func statusFor(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, row := range statusTable {
		if errors.Is(err, row.err) {
			return status.Error(row.code, row.exception+": "+err.Error())
		}
	}
	return status.Error(codes.Internal, "KMSInternalException: internal error")
}

// invalid builds a validation error naming the field and the rule.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrValidation, field, fmt.Sprintf(format, args...))
}

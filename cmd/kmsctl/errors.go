package main

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes are the AWS CLI's, so scripts that branch on them port over.
const (
	exitOK           = 0
	exitUsage        = 252 // the command line could not be parsed or its inputs read
	exitServiceError = 254 // the server answered with an error
	exitFailure      = 255 // anything else, e.g. output could not be written
)

// usageError is a problem with the command line itself. It is reported
// before any request is sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func isUsageError(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

// serviceErrorCode returns the AWS exception name and message for an error
// returned by an RPC. The transport writes "<ExceptionName>: <message>" into
// the status message when it knows the precise AWS name (DisabledException,
// InvalidCiphertextException, ...); the gRPC code is only a fallback.
func serviceErrorCode(err error) (code, message string) {
	st := status.Convert(err)
	msg := st.Message()
	if name, rest, ok := strings.Cut(msg, ": "); ok && isExceptionName(name) {
		return name, rest
	}
	return exceptionForCode(st.Code()), msg
}

// isExceptionName accepts a single word ending in "Exception", as every AWS
// KMS error code does, so an ordinary message such as "key: bad" is not
// mistaken for a code.
func isExceptionName(s string) bool {
	if !strings.HasSuffix(s, "Exception") || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func exceptionForCode(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return "NotFoundException"
	case codes.FailedPrecondition:
		return "KMSInvalidStateException"
	case codes.InvalidArgument, codes.OutOfRange:
		return "ValidationException"
	case codes.AlreadyExists:
		return "AlreadyExistsException"
	case codes.ResourceExhausted:
		return "LimitExceededException"
	case codes.PermissionDenied, codes.Unauthenticated:
		return "AccessDeniedException"
	case codes.Unavailable, codes.DeadlineExceeded:
		// Both are worth retrying, which is what AWS says of this exception.
		return "DependencyTimeoutException"
	case codes.Unimplemented:
		return "UnsupportedOperationException"
	default:
		return "KMSInternalException"
	}
}

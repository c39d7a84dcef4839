package main

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestServiceErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err     error
		code    string
		message string
	}{
		// The transport's "<ExceptionName>: " prefix wins over the gRPC code.
		{status.Error(codes.FailedPrecondition, "DisabledException: key k is disabled"), "DisabledException", "key k is disabled"},
		{status.Error(codes.InvalidArgument, "InvalidCiphertextException: bad: blob"), "InvalidCiphertextException", "bad: blob"},
		// Not an exception name: the message is kept whole.
		{status.Error(codes.InvalidArgument, "key_id: must be set"), "ValidationException", "key_id: must be set"},
		{status.Error(codes.InvalidArgument, "Bad Exception: x"), "ValidationException", "Bad Exception: x"},
		{status.Error(codes.NotFound, "no such key"), "NotFoundException", "no such key"},
		{status.Error(codes.FailedPrecondition, "x"), "KMSInvalidStateException", "x"},
		{status.Error(codes.AlreadyExists, "x"), "AlreadyExistsException", "x"},
		{status.Error(codes.ResourceExhausted, "x"), "LimitExceededException", "x"},
		{status.Error(codes.PermissionDenied, "x"), "AccessDeniedException", "x"},
		{status.Error(codes.Unauthenticated, "x"), "AccessDeniedException", "x"},
		{status.Error(codes.Unavailable, "x"), "DependencyTimeoutException", "x"},
		{status.Error(codes.DeadlineExceeded, "x"), "DependencyTimeoutException", "x"},
		{status.Error(codes.Unimplemented, "x"), "UnsupportedOperationException", "x"},
		{status.Error(codes.Internal, "x"), "KMSInternalException", "x"},
		{errors.New("not a status"), "KMSInternalException", "not a status"},
	} {
		code, msg := serviceErrorCode(tc.err)
		if code != tc.code || msg != tc.message {
			t.Errorf("serviceErrorCode(%v) = %q, %q; want %q, %q", tc.err, code, msg, tc.code, tc.message)
		}
	}
}

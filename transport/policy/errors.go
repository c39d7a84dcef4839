package policy

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of
// them, so callers map errors to status codes with errors.Is.
var (
	// ErrMalformed is wrapped by every *ParseError.
	ErrMalformed = errors.New("malformed policy")
	// ErrLockout is returned by CheckLockout.
	ErrLockout = errors.New("policy lockout safety check failed")
	// ErrInvalidGrant is returned by ValidateGrant and CheckChildGrant.
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrBadGrantToken is returned by DecodeGrantToken for any token that is
	// not one this service issued, unaltered.
	ErrBadGrantToken = errors.New("invalid grant token")
)

// ParseError reports why Parse refused a policy document and where.
//
// Path names the offending element in a dotted path from the document root:
// object members by name, array elements by 0-based index, for example
// "Statement[2].Condition.StringEquals.kms:EncryptionContext:app". It is ""
// when the document as a whole is at fault (too large, not valid UTF-8, not
// JSON at all). Msg never repeats more than a short prefix of a policy value.
type ParseError struct {
	Path string
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Path == "" {
		return ErrMalformed.Error() + ": " + e.Msg
	}
	return ErrMalformed.Error() + ": " + e.Path + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrMalformed) hold for every ParseError.
func (e *ParseError) Unwrap() error { return ErrMalformed }

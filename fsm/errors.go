package fsm

import (
	"errors"
	"fmt"
)

// Sentinels for the kinds of rejection. A rejected command changed nothing;
// its *RejectError wraps exactly one of these, so callers test with errors.Is
// and the transport maps each kind to one AWS exception.
var (
	// ErrNotFound: the named key, alias or domain key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a key, alias or domain key with that id exists, or
	// the region is already initialised.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidState: the key (or region) is not in a state that allows the
	// command, for example EnableKey on a key pending deletion.
	ErrInvalidState = errors.New("invalid state")
	// ErrInvalidArgument: a field of the command is missing or out of range.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrLimitExceeded: the command would exceed a quota (tags per key).
	ErrLimitExceeded = errors.New("limit exceeded")
)

// rejectKinds lists every kind with its wire name; the names are part of the
// node-to-node protocol and must never change.
var rejectKinds = []struct {
	kind error
	name string
}{
	{ErrNotFound, "NotFound"},
	{ErrAlreadyExists, "AlreadyExists"},
	{ErrInvalidState, "InvalidState"},
	{ErrInvalidArgument, "InvalidArgument"},
	{ErrLimitExceeded, "LimitExceeded"},
}

// RejectError says why Apply refused a command. Msg names the key or alias
// and the rule it broke; Kind is one of the sentinels above.
type RejectError struct {
	Kind error
	Msg  string
}

// NewRejectError builds a rejection; the transport uses it to rebuild an
// error forwarded from the leader.
func NewRejectError(kind error, msg string) *RejectError {
	return &RejectError{Kind: kind, Msg: msg}
}

func (e *RejectError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	if e.Kind != nil {
		return e.Kind.Error()
	}
	return "command rejected"
}

func (e *RejectError) Unwrap() error { return e.Kind }

// RejectKindName returns the wire name of kind ("NotFound", ...), or "" if
// kind is not (and does not wrap) one of the sentinels.
func RejectKindName(kind error) string {
	for _, k := range rejectKinds {
		if errors.Is(kind, k.kind) {
			return k.name
		}
	}
	return ""
}

// RejectKindByName is the inverse of RejectKindName; it returns nil for an
// unknown name so the caller can decide how to surface a peer's newer kind.
func RejectKindByName(name string) error {
	for _, k := range rejectKinds {
		if k.name == name {
			return k.kind
		}
	}
	return nil
}

func reject(kind error, format string, args ...any) *Result {
	return &Result{Err: &RejectError{Kind: kind, Msg: fmt.Sprintf(format, args...)}}
}

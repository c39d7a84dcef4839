package fsm

import (
	"errors"
	"fmt"
	"testing"
)

func TestRejectKindNamesRoundTrip(t *testing.T) {
	for _, kind := range []error{ErrNotFound, ErrAlreadyExists, ErrInvalidState, ErrInvalidArgument, ErrLimitExceeded} {
		name := RejectKindName(kind)
		if name == "" || RejectKindByName(name) != kind {
			t.Errorf("%v: name %q maps back to %v", kind, name, RejectKindByName(name))
		}
		// The transport carries a *RejectError, not the bare sentinel.
		wrapped := fmt.Errorf("forwarded: %w", NewRejectError(kind, "key k does not exist"))
		if got := RejectKindName(wrapped); got != name {
			t.Errorf("RejectKindName(wrapped %v) = %q, want %q", kind, got, name)
		}
	}
	if RejectKindName(errors.New("other")) != "" || RejectKindName(nil) != "" {
		t.Error("a foreign error has a kind name")
	}
	if RejectKindByName("Teapot") != nil || RejectKindByName("") != nil {
		t.Error("an unknown name has a kind")
	}
}

func TestRejectErrorMessageAndUnwrap(t *testing.T) {
	err := error(NewRejectError(ErrInvalidState, "key k is pending deletion; EnableKey needs Enabled or Disabled"))
	if err.Error() != "key k is pending deletion; EnableKey needs Enabled or Disabled" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, ErrInvalidState) || errors.Is(err, ErrNotFound) {
		t.Error("Unwrap does not return the kind")
	}
	if got := NewRejectError(ErrNotFound, "").Error(); got != ErrNotFound.Error() {
		t.Errorf("empty message gives %q", got)
	}
}

//go:build !cgo

package p11_test

import (
	"context"
	"errors"
	"testing"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/p11"
)

func TestOpenWithoutCgoIsUnsupported(t *testing.T) {
	if _, err := p11.Open(context.Background(), p11.Config{}); !errors.Is(err, hsm.ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

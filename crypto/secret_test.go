package crypto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrintsItsBytes(t *testing.T) {
	s := NewSecret([]byte("hunter2-key-material"))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", s)
	js, err := json.Marshal(struct{ Key *Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%+v":  fmt.Sprintf("%+v", s),
		"%#v":  fmt.Sprintf("%#v", s),
		"%q":   fmt.Sprintf("%q", s),
		"slog": logged.String(),
		"json": string(js),
	}
	for how, out := range outputs {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, redacted) {
			t.Errorf("%s printed %q", how, out)
		}
	}
}

func TestSecretZero(t *testing.T) {
	b := []byte{1, 2, 3}
	s := NewSecret(b)
	s.Zero()
	if !bytes.Equal(b, []byte{0, 0, 0}) || s.Len() != 3 {
		t.Fatalf("after Zero: %v, len %d", b, s.Len())
	}
}

func TestNilSecretIsSafe(t *testing.T) {
	var s *Secret
	s.Zero()
	if s.Len() != 0 || s.Bytes() != nil {
		t.Fatal("nil Secret is not empty")
	}
}

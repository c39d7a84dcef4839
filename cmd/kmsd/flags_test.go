package main

import (
	"io"
	"strings"
	"testing"

	"github.com/trent-kms/trent/node"
)

func TestDevModeBootstrapsWithTheSoftwareHSM(t *testing.T) {
	o, err := parseFlags([]string{"-dev", "-data-dir", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.node.Bootstrap || o.node.HSM != node.HSMSoft || o.node.GRPCAddr != "127.0.0.1:7420" {
		t.Fatalf("dev defaults = %+v", o.node)
	}
}

func TestContradictoryFlagsAreRefusedByName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-dev", "-hsm", "pkcs11"}, "-dev uses the software HSM"},
		{[]string{"-bootstrap", "-join", "127.0.0.1:1"}, "bootstrap and join"},
		{[]string{"-hsm", "pkcs11"}, "token label"},
		{[]string{"-hsm", "cloud"}, `hsm "cloud"`},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stderr strings.Builder
		if _, err := parseFlags(tc.args, &stderr); err == nil || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: err %v, stderr %q; want it to mention %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}

package main

import (
	"io"
	"reflect"
	"testing"

	"github.com/trent-kms/trent/transport"
)

func TestRateLimitFlags(t *testing.T) {
	o, err := parseFlags([]string{"-dev", "-data-dir", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.node.RateLimits, transport.RateLimits{}) {
		t.Errorf("default rate limits %+v, want none", o.node.RateLimits)
	}
	o, err = parseFlags([]string{"-dev", "-data-dir", t.TempDir(),
		"-rate-limit-crypto", "1000:2000", "-rate-limit-management", "50",
		"-rate-limit-override", "batch:crypto=5000:10000,batch:management=unlimited",
		"-rate-limit-override", "ops@eu:management=5:10",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := transport.RateLimits{
		Crypto:     transport.RateLimit{PerSecond: 1000, Burst: 2000},
		Management: transport.RateLimit{PerSecond: 50},
		Overrides: map[string]transport.PrincipalRateLimits{
			"batch":  {Crypto: transport.RateLimit{PerSecond: 5000, Burst: 10000}, Management: transport.Unlimited},
			"ops@eu": {Management: transport.RateLimit{PerSecond: 5, Burst: 10}},
		},
	}
	if !reflect.DeepEqual(o.node.RateLimits, want) {
		t.Errorf("rate limits %+v, want %+v", o.node.RateLimits, want)
	}
	for _, bad := range [][]string{
		{"-rate-limit-crypto", "fast"},
		{"-rate-limit-management", "10:0"},
		{"-rate-limit-override", "batch=10"},
		{"-rate-limit-override", "batch:signing=10"},
	} {
		if _, err := parseFlags(append([]string{"-dev", "-data-dir", t.TempDir()}, bad...), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

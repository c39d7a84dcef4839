package membership

import (
	"context"
	"errors"
	"testing"
)

func validConfig() Config {
	return Config{
		NodeID:  "a",
		Region:  "eu-1",
		LANBind: "127.0.0.1:0",
		WANBind: "127.0.0.1:0",
		Keys:    [][]byte{testKey("primary")},
		Profile: ProfileFast,
	}
}

func TestConfigRejects(t *testing.T) {
	short := make([]byte, 16) // memberlist would take it; this package wants AES-256
	cases := map[string]func(*Config){
		"no node id":        func(c *Config) { c.NodeID = "" },
		"no region":         func(c *Config) { c.Region = "" },
		"unknown role":      func(c *Config) { c.Role = 9 },
		"unknown profile":   func(c *Config) { c.Profile = 9 },
		"no LAN bind":       func(c *Config) { c.LANBind = "" },
		"host name bind":    func(c *Config) { c.WANBind = "localhost:0" },
		"bad port":          func(c *Config) { c.LANBind = "127.0.0.1:99999" },
		"advertised port 0": func(c *Config) { c.LANAdvertise = "10.0.0.1:0" },
		"no keys":           func(c *Config) { c.Keys = nil },
		"short key":         func(c *Config) { c.Keys = [][]byte{short} },
		"duplicate key":     func(c *Config) { c.Keys = [][]byte{testKey("x"), testKey("x")} },
		"short WAN key":     func(c *Config) { c.WANKeys = [][]byte{short} },
	}
	for name, tweak := range cases {
		cfg := validConfig()
		tweak(&cfg)
		if _, err := Start(t.Context(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestStartHonoursCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Start(ctx, validConfig()); err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
}

func TestProfilesStart(t *testing.T) {
	for _, p := range []Profile{ProfileDatacenter, ProfileLocal, ProfileFast} {
		cfg := validConfig()
		cfg.Profile = p
		m, err := Start(t.Context(), cfg)
		if err != nil {
			t.Fatalf("profile %d: %v", p, err)
		}
		if m.LANAddr() == m.WANAddr() || m.LANAddr() == "" {
			t.Errorf("profile %d: LAN %q, WAN %q", p, m.LANAddr(), m.WANAddr())
		}
		if err := m.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if err := m.Shutdown(); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
	}
}

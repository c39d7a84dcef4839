package main

import "testing"

func TestDialChecksEndpoint(t *testing.T) {
	for _, endpoint := range []string{"127.0.0.1:7420", "localhost:7420", "[::1]:7420", "kms.internal:443"} {
		conn, err := dial(endpoint, testPKI.clientDir)
		if err != nil {
			t.Errorf("dial(%q): %v", endpoint, err)
			continue
		}
		conn.Close()
	}
	for _, endpoint := range []string{"localhost", "127.0.0.1:", "http://localhost:7420", "dns:///kms:7420", ""} {
		if _, err := dial(endpoint, testPKI.clientDir); !isUsageError(err) {
			t.Errorf("dial(%q) error = %v; want a usage error", endpoint, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

func TestMissingTLSMaterialIsRefusedByName(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"-tls-cert", "-tls-key", "-tls-ca", "kmsctl ca issue-node", "-dev"}},
		{[]string{"-tls-cert", "n.crt"}, []string{"-tls-key and -tls-ca missing"}},
		{[]string{"-dev", "-tls-ca", "ca.crt"}, []string{"dev mode creates its own TLS certificates", "drop -tls-cert"}},
	} {
		var stderr strings.Builder
		_, err := parseFlags(append([]string{"-data-dir", t.TempDir()}, tc.args...), &stderr)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(stderr.String(), want) {
				t.Errorf("%v: err %v, stderr %q; want it to mention %q", tc.args, err, stderr.String(), want)
			}
		}
	}
}

// TestDevModeServesMutualTLSAndReloadsOnSIGHUP starts kmsd -dev on an empty
// data dir: it creates DATA/tls, serves the admin certificate it wrote there,
// and on SIGHUP presents a certificate issued into DATA/tls/node meanwhile.
func TestDevModeServesMutualTLSAndReloadsOnSIGHUP(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "trent-data")
	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr testlog.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- serve(ctx, []string{"-dev", "-data-dir", dataDir, "-grpc-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		stop()
		if code := <-exited; code != 0 {
			t.Errorf("kmsd exited %d: %s", code, stderr.String())
		}
	})
	var ready []string
	nodetest.WaitFor(t, 30*time.Second, "kmsd's ready line", func() bool {
		select {
		case code := <-exited:
			exited <- code
			t.Fatalf("kmsd exited %d before it was ready: %s", code, stderr.String())
		default:
		}
		ready = regexp.MustCompile(`ready grpc=(\S+) raft=\S+ node=(\S+)`).FindStringSubmatch(stdout.String())
		return ready != nil
	})
	addr, nodeID := ready[1], ready[2]
	tlsDir := filepath.Join(dataDir, pki.DevTLSDir)
	for _, f := range []string{"ca/ca.crt", "ca/ca.key", "node/node.crt", "node/node.key", "admin/client.crt", "admin/client.key", "admin/ca.crt"} {
		if _, err := os.Stat(filepath.Join(tlsDir, f)); err != nil {
			t.Errorf("dev mode did not create %s: %v", f, err)
		}
	}

	conn, err := nodetest.DialTLS(addr, filepath.Join(tlsDir, pki.DevAdminDir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reqCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kmspb.NewKMSClient(conn).CreateKey(reqCtx, &kmspb.CreateKeyRequest{}); err != nil {
		t.Fatalf("CreateKey as the dev admin: %v", err)
	}
	if _, err := kmspb.NewClusterClient(conn).Status(reqCtx, &kmspb.ClusterStatusRequest{}); err != nil {
		t.Fatalf("cluster status as the dev admin: %v", err)
	}

	ca, err := pki.LoadCA(filepath.Join(tlsDir, pki.DevCADir))
	if err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(tlsDir, pki.DevNodeDir)
	if err := ca.IssueNode(nodeDir, pki.NodeCertRequest{Region: "local", NodeID: nodeID}); err != nil {
		t.Fatal(err)
	}
	want, err := tls.LoadX509KeyPair(filepath.Join(nodeDir, pki.NodeCertFile), filepath.Join(nodeDir, pki.NodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, 10*time.Second, "the new certificate after SIGHUP", func() bool {
		return strings.Contains(stderr.String(), "SIGHUP: reloading the TLS certificate") &&
			bytes.Equal(servedCertificate(t, addr, filepath.Join(tlsDir, pki.DevAdminDir)), want.Certificate[0])
	})
}

// servedCertificate is the DER certificate the node at addr presents to a
// new connection from the client certificate in clientDir.
func servedCertificate(t *testing.T, addr, clientDir string) []byte {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(clientDir, pki.ClientCertFile), filepath.Join(clientDir, pki.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	// Only the certificate is looked at, not trusted: skip verification.
	c, err := tls.Dial("tcp", addr, &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

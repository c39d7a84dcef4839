package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/trent-kms/trent/transport/pki"
)

// tlsDirEnv names the client certificate directory when --tls-dir is not
// given.
const tlsDirEnv = "TRENT_TLS_DIR"

// devAdminTLSDir is where `kmsd -dev`, started in the same directory, writes
// its admin client certificate: the last place kmsctl looks.
var devAdminTLSDir = filepath.Join("trent-data", pki.DevTLSDir, pki.DevAdminDir)

// dial returns a mutual-TLS connection to the server at endpoint (HOST:PORT),
// presenting the client certificate in tlsDir (client.crt, client.key,
// ca.crt; devAdminTLSDir when empty). The server must hold a node
// certificate from the same CA that names HOST (an IP endpoint is checked
// against the certificate's IP addresses). It does not connect yet: the
// first RPC does, so a server that is down is reported as that RPC's error.
func dial(endpoint, tlsDir string) (*grpc.ClientConn, error) {
	// Checked here because gRPC would take "http://host:port" as a target
	// name to resolve and fail later with a vague resolver error.
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil || port == "" || strings.Contains(endpoint, "/") {
		return nil, usagef("--endpoint: want HOST:PORT, got %q", endpoint)
	}
	creds, err := clientCredentials(tlsDir, host)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(creds),
		grpc.WithUnaryInterceptor(callTimeout(60*time.Second)),
	)
}

// clientCredentials loads the client certificate for a server named
// serverName.
func clientCredentials(tlsDir, serverName string) (credentials.TransportCredentials, error) {
	dir := tlsDir
	if dir == "" {
		dir = devAdminTLSDir
	}
	certFile := filepath.Join(dir, pki.ClientCertFile)
	if _, err := os.Stat(certFile); tlsDir == "" && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no client certificate: every connection is mutual TLS; pass --tls-dir DIR "+
			"(holding %s, %s and %s from `kmsctl ca issue-client`) or set %s (`kmsd -dev` writes one to ./%s)",
			pki.ClientCertFile, pki.ClientKeyFile, pki.CACertFile, tlsDirEnv, devAdminTLSDir)
	}
	// Never polled: kmsctl lives for one command.
	r, err := pki.NewReloader(certFile, filepath.Join(dir, pki.ClientKeyFile), filepath.Join(dir, pki.CACertFile), nil, -1)
	if err != nil {
		return nil, fmt.Errorf("client certificate in %s: %w", dir, err)
	}
	return credentials.NewTLS(r.ClientConfig(serverName)), nil
}

// callTimeout bounds each RPC, like the AWS CLI's 60-second read timeout,
// so a hung server does not hang a script. It is per call rather than per
// command because list commands may fetch many pages.
func callTimeout(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

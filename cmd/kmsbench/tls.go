package main

import (
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/trent-kms/trent/transport/pki"
)

// tlsDirEnv is kmsctl's: the client certificate directory when -tls-dir is
// not given.
const tlsDirEnv = "TRENT_TLS_DIR"

const tlsDirUsage = "client certificate `DIR` (client.crt, client.key, ca.crt) for Trent's mutual TLS; " +
	"default $" + tlsDirEnv + "; empty: plaintext, for a baseline server run without -tls-dir"

// clientCreds are the transport credentials for endpoint: mutual TLS with
// the client certificate in tlsDir, checking that the server is a node
// certificate naming endpoint's host, or plaintext when tlsDir is empty.
func clientCreds(tlsDir, endpoint string) (grpc.DialOption, error) {
	if tlsDir == "" {
		return grpc.WithTransportCredentials(insecure.NewCredentials()), nil
	}
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return nil, err
	}
	r, err := loadCertificate(tlsDir, pki.ClientCertFile, pki.ClientKeyFile)
	if err != nil {
		return nil, err
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(r.ClientConfig(host))), nil
}

// serverCreds serve mutual TLS 1.3 with the node certificate in tlsDir
// (node.crt, node.key, ca.crt), as a Trent node does, so a baseline pays
// for the same encryption.
func serverCreds(tlsDir string) (grpc.ServerOption, error) {
	r, err := loadCertificate(tlsDir, pki.NodeCertFile, pki.NodeKeyFile)
	if err != nil {
		return nil, err
	}
	return grpc.Creds(credentials.NewTLS(r.ServerConfig())), nil
}

// loadCertificate reads a certificate, its key and ca.crt from dir, once:
// a benchmark does not outlive its certificates.
func loadCertificate(dir, certName, keyName string) (*pki.Reloader, error) {
	return pki.NewReloader(filepath.Join(dir, certName), filepath.Join(dir, keyName), filepath.Join(dir, pki.CACertFile), nil, -1)
}

// defaultTLSDir is -tls-dir's default.
func defaultTLSDir() string { return os.Getenv(tlsDirEnv) }

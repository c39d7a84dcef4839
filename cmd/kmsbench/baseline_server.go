package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/transport/kmspb"
)

// baselineKMS answers Encrypt with a fixed response and nothing else: the
// cost of a bare gRPC unary call with Trent's message types, which a real
// Encrypt is measured against.
type baselineKMS struct {
	kmspb.UnimplementedKMSServer
	response *kmspb.EncryptResponse
}

// baselineCiphertextSize is what a Trent ciphertext of a 32-byte plaintext
// under a UUID key id weighs (version, id length, id, version id, salt,
// nonce, sealed bytes, tag), so the baseline moves the same bytes as the
// Encrypt it is compared with.
const baselineCiphertextSize = 1 + 1 + 36 + 16 + 32 + 12 + 32 + 16

func newBaselineKMS() *baselineKMS {
	return &baselineKMS{response: &kmspb.EncryptResponse{
		CiphertextBlob:      make([]byte, baselineCiphertextSize),
		KeyId:               "arn:aws:kms:local:000000000000:key/00000000-0000-0000-0000-000000000000",
		EncryptionAlgorithm: "SYMMETRIC_DEFAULT",
	}}
}

// Encrypt shares one response between calls: gRPC only reads it, and
// protobuf messages are safe for concurrent reads.
func (s *baselineKMS) Encrypt(context.Context, *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	return s.response, nil
}

// serveBaseline listens on addr, reports the bound address through ready and
// serves until ctx is done.
func serveBaseline(ctx context.Context, addr string, ready func(net.Addr), opts ...grpc.ServerOption) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(opts...)
	kmspb.RegisterKMSServer(srv, newBaselineKMS())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	ready(lis.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stopGracefully(srv, 5*time.Second)
	return nil
}

// stopGracefully lets in-flight calls finish but does not wait on clients
// that keep streams open past the grace period.
func stopGracefully(srv *grpc.Server, grace time.Duration) {
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(grace):
		srv.Stop()
	}
}

func runBaselineServer(ctx context.Context, cfg *baselineServerConfig, stdout, stderr io.Writer) int {
	var opts []grpc.ServerOption
	if cfg.tlsDir != "" {
		creds, err := serverCreds(cfg.tlsDir)
		if err != nil {
			fmt.Fprintf(stderr, "kmsbench baseline-server: -tls-dir: %v\n", err)
			return 1
		}
		opts = append(opts, creds)
	}
	err := serveBaseline(ctx, cfg.addr, func(a net.Addr) {
		fmt.Fprintf(stdout, "ready grpc=%s\n", a)
	}, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "kmsbench baseline-server: %v\n", err)
		return 1
	}
	return 0
}

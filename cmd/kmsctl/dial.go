package main

import (
	"context"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// dial returns a connection to the server at endpoint (HOST:PORT). It does
// not connect yet: the first RPC does, so a server that is down is reported
// as that RPC's error.
//
// Connections are plaintext for now. This is the one place that knows how to
// reach the server, so mutual TLS (--tls-dir) is to be added here.
func dial(endpoint string) (*grpc.ClientConn, error) {
	// Checked here because gRPC would take "http://host:port" as a target
	// name to resolve and fail later with a vague resolver error.
	if _, port, err := net.SplitHostPort(endpoint); err != nil || port == "" || strings.Contains(endpoint, "/") {
		return nil, usagef("--endpoint: want HOST:PORT, got %q", endpoint)
	}
	return grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(callTimeout(60*time.Second)),
	)
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

package main

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/transport/kmspb"
)

// dialEndpoints opens connsPerEndpoint connections to each endpoint, ordered
// endpoint-first (e0 e1 e2 e0 e1 e2 ...) so that giving worker i connection
// i mod len spreads consecutive workers over endpoints.
func dialEndpoints(endpoints []string, connsPerEndpoint int, tlsDir string) ([]*grpc.ClientConn, error) {
	var conns []*grpc.ClientConn
	for range connsPerEndpoint {
		for _, e := range endpoints {
			creds, err := clientCreds(tlsDir, e)
			if err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("endpoint %s: -tls-dir: %w", e, err)
			}
			conn, err := grpc.NewClient(e, creds)
			if err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("endpoint %s: %w", e, err)
			}
			// Connect now rather than on the first request, which would
			// otherwise pay for the handshake inside the measurement when
			// there is no warmup.
			conn.Connect()
			conns = append(conns, conn)
		}
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, c := range conns {
		c.Close()
	}
}

func runKMSLoad(ctx context.Context, cfg *loadConfig, stdout, stderr io.Writer) int {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "kmsbench: "+format+"\n", args...) }
	conns, err := dialEndpoints(cfg.endpoints, cfg.connsPerEndpoint, cfg.tlsDir)
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer closeAll(conns)
	clients := make([]kmspb.KMSClient, len(conns))
	for i, c := range conns {
		clients[i] = kmspb.NewKMSClient(c)
	}
	fx, err := prepareFixture(ctx, cfg, clients[:len(cfg.endpoints)], logf)
	if err != nil {
		logf("%v", err)
		return 1
	}
	m := load{
		concurrency: cfg.concurrency,
		warmup:      cfg.warmup,
		duration:    cfg.duration,
		timeout:     cfg.timeout,
		newWorker: func(worker int) request {
			return newMixRequest(cfg.mix, clients[worker%len(clients)], fx, worker)
		},
	}.run(ctx)

	r := result{
		label:       cfg.label,
		op:          cfg.op,
		concurrency: cfg.concurrency,
		size:        cfg.size,
		endpoints:   cfg.endpoints,
		measurement: m,
	}
	if cfg.op == "mix" {
		r.mix = formatMix(cfg.mix)
	}
	if err := r.write(stdout, cfg.jsonOutput); err != nil {
		logf("%v", err)
		return 1
	}
	if m.ops == 0 {
		logf("no request succeeded")
		return 1
	}
	return 0
}

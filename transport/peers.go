package transport

import (
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/transport/internalpb"
)

// peerPool keeps one gRPC connection per peer address for forwarding and
// read-index rounds.
type peerPool struct {
	opts  []grpc.DialOption
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newPeerPool(opts []grpc.DialOption) *peerPool {
	return &peerPool{opts: opts, conns: make(map[string]*grpc.ClientConn)}
}

func (p *peerPool) internal(addr string) (internalpb.InternalClient, error) {
	conn, err := p.conn(addr)
	if err != nil {
		return nil, err
	}
	return internalpb.NewInternalClient(conn), nil
}

func (p *peerPool) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if conn, ok := p.conns[addr]; ok {
		return conn, nil
	}
	conn, err := grpc.NewClient(addr, p.opts...)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", addr, err)
	}
	p.conns[addr] = conn
	return conn, nil
}

func (p *peerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, conn := range p.conns {
		_ = conn.Close()
		delete(p.conns, addr)
	}
}

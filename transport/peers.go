package transport

import (
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"

	"github.com/trent-kms/trent/transport/internalpb"
)

// PeerDialFunc opens a client connection to another node of the region at
// addr (HOST:PORT). It is per target so that TLS can check that the node
// answering is the one whose certificate names addr's host.
type PeerDialFunc func(addr string) (*grpc.ClientConn, error)

// errNoPeerDial: the Server was built without Config.PeerDial.
var errNoPeerDial = errors.New("no way to reach other nodes: Config.PeerDial is not set")

// peerPool keeps one gRPC connection per peer address for forwarding and
// read-index rounds.
type peerPool struct {
	dial  PeerDialFunc
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newPeerPool(dial PeerDialFunc) *peerPool {
	return &peerPool{dial: dial, conns: make(map[string]*grpc.ClientConn)}
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
	if p.dial == nil {
		return nil, fmt.Errorf("dial peer %s: %w", addr, errNoPeerDial)
	}
	conn, err := p.dial(addr)
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

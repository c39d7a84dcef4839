package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Stream layer limits.
const (
	// streamHandshakeTimeout bounds an incoming handshake, and an outgoing
	// one when raft gives no timeout.
	streamHandshakeTimeout = 10 * time.Second
	// maxPendingHandshakes bounds concurrent incoming handshakes; past it
	// the accept loop waits, so a flood of idle connections cannot pile up
	// goroutines.
	maxPendingHandshakes = 64
)

// streamLayer is raft.StreamLayer over mutual TLS between nodes of one
// region. A background loop accepts TCP connections and handshakes each in
// its own goroutine with a deadline; only connections from a node
// certificate of the region reach Accept, the others are logged and closed.
type streamLayer struct {
	ln     net.Listener
	r      *Reloader
	region string
	logger *slog.Logger

	conns   chan net.Conn
	closed  chan struct{}
	loopErr error // set before loopDone is closed
	loopEnd chan struct{}

	mu        sync.Mutex
	pending   map[net.Conn]struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewStreamLayer turns ln into a raft.StreamLayer where both ends present
// node certificates from r and accept only a node certificate of region:
// Accept yields only such peers, and Dial fails unless the server is one (and
// its certificate names the host dialled). Refused connections are logged
// with the remote address and the reason. Addr is ln.Addr(): to advertise
// another address, wrap ln. Close closes ln.
func NewStreamLayer(ln net.Listener, r *Reloader, region string, logger *slog.Logger) raft.StreamLayer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &streamLayer{
		ln: ln, r: r, region: region, logger: logger,
		conns:   make(chan net.Conn),
		closed:  make(chan struct{}),
		loopEnd: make(chan struct{}),
		pending: map[net.Conn]struct{}{},
	}
	if own := r.Identity(); own.Kind != KindNode || own.Region != region {
		logger.Error("raft tls: this node's certificate is not a node certificate of the stream layer's region; every peer will refuse it",
			"identity", own.String(), "region", region)
	}
	go s.acceptLoop()
	return s
}

func (s *streamLayer) policy() peerPolicy {
	return peerPolicy{nodesOnly: true, regionSet: true, region: s.region}
}

func (s *streamLayer) acceptLoop() {
	defer close(s.loopEnd)
	sem := make(chan struct{}, maxPendingHandshakes)
	var backoff time.Duration
	for {
		select {
		case sem <- struct{}{}:
		case <-s.closed:
			s.loopErr = net.ErrClosed
			return
		}
		raw, err := s.ln.Accept()
		if err != nil {
			<-sem
			select {
			case <-s.closed:
				s.loopErr = net.ErrClosed
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				s.loopErr = err
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("raft tls: accept failed, retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.closed:
				s.loopErr = net.ErrClosed
				return
			}
			continue
		}
		backoff = 0
		if !s.track(raw) {
			raw.Close()
			<-sem
			continue
		}
		go func() {
			defer func() { <-sem }()
			s.handshake(raw)
		}()
	}
}

// track registers a connection being handshaken so Close can cut it; false
// once closed.
func (s *streamLayer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	s.pending[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *streamLayer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.pending, c)
	s.mu.Unlock()
	s.wg.Done()
}

func (s *streamLayer) handshake(raw net.Conn) {
	defer s.untrack(raw)
	tc := tls.Server(raw, s.r.serverConfig(s.policy(), false))
	ctx, cancel := context.WithTimeout(context.Background(), streamHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.logger.Warn("raft tls: connection refused", "remote", raw.RemoteAddr().String(), "reason", err)
		raw.Close()
		return
	}
	select {
	case s.conns <- tc:
	case <-s.closed:
		tc.Close()
	}
}

// Accept returns the next authenticated connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	case <-s.loopEnd:
		return nil, s.loopErr
	}
}

// Close stops accepting, closes the listener and cuts handshakes in flight.
// Connections already returned by Accept or Dial stay open.
func (s *streamLayer) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.closed)
		for c := range s.pending {
			c.Close()
		}
		s.mu.Unlock()
		err = s.ln.Close()
		<-s.loopEnd
		s.wg.Wait()
	})
	return err
}

func (s *streamLayer) Addr() net.Addr { return s.ln.Addr() }

// Dial connects to a node of the same region at address, within timeout
// (for the TCP connect and the handshake together). A failed TCP connect is
// returned as is; a failed handshake is also logged as a refusal. In TLS 1.3
// the client finishes its handshake before the server has checked the client
// certificate, so a server refusing this node shows up on the first read.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft tls: dial %s: %w", address, err)
	}
	if timeout <= 0 {
		timeout = streamHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, s.r.clientConfig(host, s.policy(), false))
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		s.logger.Warn("raft tls: server refused", "remote", raw.RemoteAddr().String(), "reason", err)
		return nil, fmt.Errorf("raft tls: handshake with %s: %w", address, err)
	}
	return tc, nil
}

package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A heartbeat Raft is still handling when its transport closes must finish
// before Close returns: the node closes its store right after, and Raft panics
// when it cannot save a term it has just learned.
func TestTransportCloseWaitsForTheHeartbeatInFlight(t *testing.T) {
	server, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	gate := gateHeartbeats(server)
	if _, ok := gate.(raft.WithPreVote); !ok {
		t.Fatal("the gate hides the transport's pre-vote support from Raft")
	}
	entered, release, handled := make(chan struct{}), make(chan struct{}), make(chan struct{})
	gate.SetHeartbeatHandler(func(rpc raft.RPC) {
		close(entered)
		<-release
		close(handled)
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})

	client, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sent := make(chan error, 1)
	go func() {
		var resp raft.AppendEntriesResponse
		sent <- client.AppendEntries("server", server.LocalAddr(), heartbeat(), &resp)
	}()
	select {
	case <-entered:
	case err := <-sent:
		t.Fatalf("heartbeat answered without reaching the handler: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("heartbeat never reached the handler")
	}

	closed := make(chan error, 1)
	go func() { closed <- gate.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while a heartbeat was still being handled")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return once the heartbeat was handled")
	}
	select {
	case <-handled:
	default:
		t.Fatal("Close returned before the heartbeat was handled")
	}
}

// After Close the handler Raft installed is never called again: a heartbeat
// arriving then is refused rather than saved to a closed store.
func TestClosedGateRefusesHeartbeats(t *testing.T) {
	server, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close() // the recorder hides its Close from the gate
	recorder := &heartbeatRecorder{Transport: server}
	gate := gateHeartbeats(recorder)
	called := false
	gate.SetHeartbeatHandler(func(rpc raft.RPC) { called = true })
	if err := gate.Close(); err != nil {
		t.Fatal(err)
	}
	respCh := make(chan raft.RPCResponse, 1)
	recorder.handler(raft.RPC{Command: heartbeat(), RespChan: respCh})
	if called {
		t.Fatal("a heartbeat after Close reached Raft")
	}
	if resp := <-respCh; !errors.Is(resp.Error, raft.ErrTransportShutdown) {
		t.Fatalf("heartbeat after Close answered %v, want %v", resp.Error, raft.ErrTransportShutdown)
	}
}

// heartbeatRecorder keeps the handler the gate installs so the test can call it
// the way the transport's connection goroutine would.
type heartbeatRecorder struct {
	raft.Transport
	handler func(raft.RPC)
}

func (r *heartbeatRecorder) SetHeartbeatHandler(h func(raft.RPC)) { r.handler = h }

// heartbeat is an AppendEntries request shaped like the ones the network
// transport hands to the heartbeat handler.
func heartbeat() *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("leader"), Addr: []byte("leader")},
		Term:      1,
	}
}

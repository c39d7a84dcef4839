package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
)

// kvMachine is a deterministic key/value state machine for tests. Commands are "key=value";
// Apply returns the command's log index.
type kvMachine struct {
	mu      sync.Mutex
	data    map[string]string
	applied uint64
	changed chan struct{} // closed and replaced whenever applied moves
}

func newKVMachine() *kvMachine {
	return &kvMachine{data: map[string]string{}, changed: make(chan struct{})}
}

func kvCommand(key, value string) []byte { return []byte(key + "=" + value) }

func (m *kvMachine) Apply(index uint64, data []byte) any {
	key, value, ok := bytes.Cut(data, []byte("="))
	if !ok {
		panic(fmt.Sprintf("kvMachine: undecodable command at %d: %q", index, data))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[string(key)] = string(value)
	m.advance(index)
	return index
}

func (m *kvMachine) advance(index uint64) {
	m.applied = index
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *kvMachine) AppliedIndex() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.applied
}

func (m *kvMachine) WaitApplied(ctx context.Context, index uint64) error {
	for {
		m.mu.Lock()
		applied, changed := m.applied, m.changed
		m.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *kvMachine) Get(key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[key]
	return v, ok
}

func (m *kvMachine) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.data)
}

// Snapshot copies the map so WriteTo can run concurrently with Apply.
func (m *kvMachine) Snapshot() (StateSnapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &kvSnapshot{data: maps.Clone(m.data), applied: m.applied}, nil
}

// Snapshot encoding: applied index, entry count, then length-prefixed keys and values in key order.
type kvSnapshot struct {
	data    map[string]string
	applied uint64
}

func (s *kvSnapshot) WriteTo(w io.Writer) (int64, error) {
	var buf []byte
	buf = binary.BigEndian.AppendUint64(buf, s.applied)
	buf = binary.AppendUvarint(buf, uint64(len(s.data)))
	for _, k := range slices.Sorted(maps.Keys(s.data)) {
		buf = binary.AppendUvarint(buf, uint64(len(k)))
		buf = append(buf, k...)
		buf = binary.AppendUvarint(buf, uint64(len(s.data[k])))
		buf = append(buf, s.data[k]...)
	}
	n, err := w.Write(buf)
	return int64(n), err
}

func (s *kvSnapshot) Release() {}

func (m *kvMachine) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	var header [8]byte
	if _, err := io.ReadFull(br, header[:]); err != nil {
		return err
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return err
	}
	data := make(map[string]string, count)
	for range count {
		k, err := readString(br)
		if err != nil {
			return err
		}
		v, err := readString(br)
		if err != nil {
			return err
		}
		data[k] = v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = data
	m.advance(binary.BigEndian.Uint64(header[:]))
	return nil
}

func readString(br *bufio.Reader) (string, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	_, err = io.ReadFull(br, b)
	return string(b), err
}

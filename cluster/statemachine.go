package cluster

import (
	"context"
	"io"

	"github.com/hashicorp/raft"
)

// StateMachine is the replicated state the cluster drives; fsm.FSM implements it.
//
// Apply receives only command entries, in log order, with their log index. AppliedIndex is the
// index of the last command applied (restored from the snapshot after Restore), and WaitApplied
// returns once AppliedIndex() >= index or ctx is done. Apply is never called concurrently with
// itself or with Restore.
type StateMachine interface {
	Apply(index uint64, data []byte) any
	Restore(r io.Reader) error
	AppliedIndex() uint64
	WaitApplied(ctx context.Context, index uint64) error
}

// StateSnapshot is a point-in-time copy of the state. WriteTo runs concurrently with Apply;
// Release is always called once the snapshot is written or abandoned.
type StateSnapshot interface {
	WriteTo(w io.Writer) (int64, error)
	Release()
}

// fsmAdapter presents a StateMachine to raft as a raft.BatchingFSM, so a whole committed batch
// reaches the state machine in one call from raft's FSM goroutine.
type fsmAdapter struct {
	sm       StateMachine
	snapshot func() (StateSnapshot, error)
}

var _ raft.BatchingFSM = (*fsmAdapter)(nil)

func (a *fsmAdapter) ApplyBatch(logs []*raft.Log) []any {
	results := make([]any, len(logs))
	for i, l := range logs {
		results[i] = a.Apply(l)
	}
	return results
}

// Apply forwards commands only: configuration entries are raft's business, not the state's.
func (a *fsmAdapter) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return a.sm.Apply(l.Index, l.Data)
}

func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	s, err := a.snapshot()
	if err != nil {
		return nil, err
	}
	return snapshotAdapter{s}, nil
}

func (a *fsmAdapter) Restore(r io.ReadCloser) error {
	return a.sm.Restore(r)
}

type snapshotAdapter struct{ s StateSnapshot }

func (s snapshotAdapter) Persist(sink raft.SnapshotSink) error {
	if _, err := s.s.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshotAdapter) Release() { s.s.Release() }

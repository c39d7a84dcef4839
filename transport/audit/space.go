package audit

import "sync"

// space keeps zeroed space ahead of the records, so that the writer's
// writes land inside the file and its syncs flush data only. Zeroing runs
// in a goroutine of its own while the writer goes on; the writer only
// waits for it if it is about to write into the range being zeroed.
// Preallocation is an optimization: when zeroing fails (a full disk) the
// writer appends as without it.
//
// Owned by the writer goroutine, except wait, which Close calls once the
// writer has exited.
type space struct {
	l       *Log
	end     int64      // zeroed space ends here
	from    int64      // start of the range being zeroed
	pending chan error // result of the zeroing in progress; nil if none
	retryAt int64      // after a failure, do not try again before the records reach this
}

// reserve is called before the writer writes n bytes at off.
func (s *space) reserve(off, n int64) {
	end := off + n
	if s.pending != nil {
		if end > s.from {
			s.finish(<-s.pending)
		} else {
			select {
			case err := <-s.pending:
				s.finish(err)
			default:
			}
		}
	}
	if s.pending != nil || s.end-end >= preallocChunk/2 || end < s.retryAt {
		return
	}
	s.from = s.end
	if s.from < end {
		s.from = roundUp(end+preallocGap, pageSize)
	}
	done, from := make(chan error, 1), s.from
	s.pending = done
	go func() { done <- s.l.zero(from, preallocChunk) }()
}

func (s *space) finish(err error) {
	s.pending = nil
	if err != nil {
		s.l.log.Warn("audit log: cannot preallocate space; appending without", "err", err)
		s.retryAt = s.from + preallocChunk
		return
	}
	s.end = s.from + preallocChunk
}

// wait waits for zeroing in progress to end.
func (s *space) wait() {
	if s.pending != nil {
		s.finish(<-s.pending)
	}
}

const pageSize = 4096

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

var zeros = sync.OnceValue(func() []byte { return make([]byte, 1<<20) })

// zero writes n zero bytes at off and makes them durable, together with
// the file's new size.
func (l *Log) zero(off, n int64) error {
	z := zeros()
	for n > 0 {
		c := min(n, int64(len(z)))
		if _, err := l.f.WriteAt(z[:c], off); err != nil {
			return err
		}
		off, n = off+c, n-c
	}
	return l.fdatasync()
}

package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Append on a closed Log.
var ErrClosed = errors.New("audit: log closed")

// Config configures a Log.
type Config struct {
	// Path of the log file; created with mode 0600 if missing.
	Path string
	// Logger receives open, torn-tail and failure messages; nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxBatch bounds the records committed by one write+sync; default 1024.
	MaxBatch int
	// MaxDelay, if positive, lets the writer wait up to this long for a
	// batch to fill before writing it. The default, 0, writes at once what
	// queued while the previous sync ran, which already batches under load.
	MaxDelay time.Duration
	// Now stamps records that come without a time; default time.Now.
	Now func() time.Time
}

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	path     string
	log      *slog.Logger
	maxBatch int
	maxDelay time.Duration
	now      func() time.Time
	f        *os.File
	unlock   func()

	mu      sync.Mutex
	cur     *batch   // batch accepting records; nil if none
	full    []*batch // full batches waiting for the writer, oldest first
	closing bool
	err     error // sticky write or sync failure
	head    struct {
		seq  uint64
		hash string
	}

	wake      chan struct{} // records queued (capacity 1)
	done      chan struct{} // writer exited
	closeOnce sync.Once
	closeErr  error

	// Owned by the writer goroutine.
	seq  uint64
	prev string
	buf  []byte

	// Test hooks; set before the first Append.
	syncFn   func() error // fdatasync, or a test's replacement
	onCommit func(n int)  // called with each batch size after its sync
	syncs    atomic.Uint64
}

type batch struct {
	recs [][]byte // encoded records without seq and prev (marshalMiddle)
	seq  uint64   // seq of recs[0], set by commit
	err  error    // failure of the whole batch
	done chan struct{}
}

// Open opens the log at cfg.Path, creating it if needed, and starts its
// writer. On an existing log it verifies the records at its tail, resumes
// their sequence and chain, and truncates a torn last line (a crash in the
// middle of a write), saying so in the log. A tail that does not verify is
// an error matching ErrBroken: the node must not append to a tampered log.
// Only one Log at a time may have a file open (an exclusive flock).
func Open(cfg Config) (*Log, error) {
	if cfg.Path == "" {
		return nil, errors.New("audit: no path")
	}
	l := &Log{
		path:     cfg.Path,
		log:      cfg.Logger,
		maxBatch: cfg.MaxBatch,
		maxDelay: cfg.MaxDelay,
		now:      cfg.Now,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		prev:     zeroHash,
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("audit_log", cfg.Path)
	if l.maxBatch <= 0 {
		l.maxBatch = 1024
	}
	if l.now == nil {
		l.now = time.Now
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	unlock, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", cfg.Path, err)
	}
	l.f, l.unlock = f, unlock
	l.syncFn = l.fdatasync
	if err := l.recover(); err != nil {
		l.unlock()
		f.Close()
		return nil, err
	}
	l.head.seq, l.head.hash = l.seq, l.prev
	go l.run()
	return l, nil
}

// tailWindow is how much of the end of the file Open verifies. It holds at
// least one whole line and the newline before it.
const tailWindow = 2 * maxLine

// recover reads the tail, verifies the complete lines of the tail window,
// sets seq and prev from the last one and truncates a torn last line. A log
// that does not verify is left as it is.
func (l *Log) recover() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		l.log.Warn("audit log is readable or writable by others", "mode", fi.Mode().Perm().String())
	}
	size := fi.Size()
	start := max(size-tailWindow, 0)
	buf := make([]byte, size-start)
	if _, err := l.f.ReadAt(buf, start); err != nil && err != io.EOF {
		return fmt.Errorf("audit: reading tail: %w", err)
	}
	end := bytes.LastIndexByte(buf, '\n') + 1 // bytes of buf up to the last newline
	if end == 0 && start > 0 {
		return fmt.Errorf("%w (log %s)", &BrokenLinkError{Reason: fmt.Sprintf("no line end in the last %d bytes", tailWindow)}, l.path)
	}
	lines := buf[:end]
	c := newChain()
	if start > 0 {
		// The window starts inside a line: skip to the first whole one and
		// check the rest among themselves.
		lines = lines[bytes.IndexByte(lines, '\n')+1:]
		c.anchored = false
	}
	if start > 0 && len(lines) == 0 {
		return fmt.Errorf("%w (log %s)", &BrokenLinkError{Reason: "last line too long"}, l.path)
	}
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		_, berr := c.check(lines[:i])
		if berr != nil {
			if start > 0 {
				berr.Line = 0 // line numbers are unknown in a tail window
				if c.seq == 0 {
					berr.Seq = 0
				}
			}
			return fmt.Errorf("%w (log %s; refusing to append to it)", berr, l.path)
		}
		lines = lines[i+1:]
	}
	if torn := len(buf) - end; torn > 0 {
		keep := start + int64(end)
		if err := l.f.Truncate(keep); err != nil {
			return fmt.Errorf("audit: truncating torn tail: %w", err)
		}
		l.log.Warn("audit log ended in a torn line (crash during a write); truncated it",
			"offset", keep, "bytes_dropped", torn)
	}
	l.seq, l.prev = c.seq, c.prev
	// Make what a previous process wrote durable before chaining onto it,
	// and the file's directory entry if the file is new.
	if err := l.syncFn(); err != nil {
		return fmt.Errorf("audit: sync: %w", err)
	}
	if size == 0 {
		if err := syncDir(filepath.Dir(l.path)); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	l.log.Info("audit log open", "seq", l.seq)
	return nil
}

// Append adds r to the log. It sets r's Seq, PrevHash and Hash, and its Time
// if zero (times are stored in UTC). It returns once the record is durable
// (written and fdatasync'ed), together with the records that queued beside
// it. If ctx ends first Append returns ctx.Err(); the record may still be
// written. After a write or sync failure every Append fails: the node must
// not serve unaudited requests.
func (l *Log) Append(ctx context.Context, r Record) error {
	_, err := l.append(ctx, r)
	return err
}

func (l *Log) append(ctx context.Context, r Record) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	sanitize(&r)
	if err := validate(&r); err != nil {
		return 0, err
	}
	m, err := marshalMiddle(&r)
	if err != nil {
		return 0, fmt.Errorf("audit: encoding record: %w", err)
	}
	if n := lineLen(m); n > maxLine {
		return 0, fmt.Errorf("audit: record too large (%d bytes)", n)
	}
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return 0, err
	}
	if l.closing {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	b := l.cur
	if b == nil {
		b = &batch{recs: make([][]byte, 0, min(l.maxBatch, 64)), done: make(chan struct{})}
		l.cur = b
	}
	i := len(b.recs)
	b.recs = append(b.recs, m)
	if len(b.recs) >= l.maxBatch {
		l.full = append(l.full, b)
		l.cur = nil
	}
	l.mu.Unlock()
	signal(l.wake)

	select {
	case <-b.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.seq + uint64(i), nil
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Head returns the seq and hash of the last durable record (0 and 64 zeros
// for an empty log). Publishing it elsewhere from time to time lets a
// verifier detect records cut off the end of the log.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head.seq, l.head.hash
}

// Close commits the records already queued, stops the writer and closes
// the file. Appends after Close fail with ErrClosed. Close returns the
// log's write or sync failure, if any.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.mu.Unlock()
		signal(l.wake)
		<-l.done
		l.unlock()
		if err := l.f.Close(); err != nil {
			l.closeErr = fmt.Errorf("audit: %w", err)
		}
		l.mu.Lock()
		if l.err != nil {
			l.closeErr = l.err
		}
		l.mu.Unlock()
	})
	return l.closeErr
}

// run is the writer: it takes one batch at a time and commits it.
func (l *Log) run() {
	defer close(l.done)
	for {
		b, closing := l.take()
		if b == nil {
			if closing {
				return
			}
			<-l.wake
			continue
		}
		l.commit(b)
	}
}

// take returns the next batch to commit, or nil and whether the log is
// closing. With MaxDelay it first waits for a partial batch to fill.
func (l *Log) take() (*batch, bool) {
	l.mu.Lock()
	if len(l.full) == 0 && l.cur != nil && l.maxDelay > 0 && !l.closing {
		t := time.NewTimer(l.maxDelay)
		for expired := false; !expired && len(l.full) == 0 && !l.closing; {
			l.mu.Unlock()
			select {
			case <-t.C:
				expired = true
			case <-l.wake: // more records, or Close
			}
			l.mu.Lock()
		}
		t.Stop()
	}
	defer l.mu.Unlock()
	var b *batch
	switch {
	case len(l.full) > 0:
		b = l.full[0]
		l.full[0] = nil
		l.full = l.full[1:]
	case l.cur != nil:
		b = l.cur
		l.cur = nil
	}
	return b, l.closing
}

// commit writes and syncs one batch, then releases its Appends.
func (l *Log) commit(b *batch) {
	defer close(b.done)
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err != nil {
		b.err = err
		return
	}
	buf := l.buf[:0]
	seq, prev := l.seq, l.prev
	for _, m := range b.recs {
		seq++
		buf, prev = appendLine(buf, seq, prev, m)
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf
	}
	if _, err = l.f.Write(buf); err == nil {
		l.syncs.Add(1)
		err = l.syncFn()
	}
	if err != nil {
		err = fmt.Errorf("audit: %s: %w", l.path, err)
		l.log.Error("audit log write failed; refusing further appends", "err", err)
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		b.err = err
		return
	}
	b.seq = l.seq + 1
	l.seq, l.prev = seq, prev
	l.mu.Lock()
	l.head.seq, l.head.hash = seq, prev
	l.mu.Unlock()
	if l.onCommit != nil {
		l.onCommit(len(b.recs))
	}
}

package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
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
	// Logger receives open, torn-tail, failure and close messages; nil
	// means slog.Default().
	Logger *slog.Logger
	// MaxBatch bounds the records committed by one write+sync; default 1024.
	MaxBatch int
	// MaxDelay bounds how long the writer holds a batch open for more
	// records, counted from its first record; default 2 ms, negative never
	// holds one. The writer holds a batch only while it is smaller than the
	// one before it (see take): an idle log, or one serving a single caller,
	// writes each record at once.
	MaxDelay time.Duration
	// SyncInterval, when positive, acknowledges a record once it is written
	// to the file, without waiting for fdatasync, and syncs in the
	// background at most this often while there is something to sync. An
	// acknowledged record then survives a crash of the process but not of
	// the machine: a power loss or kernel crash loses at most the records
	// of the last SyncInterval (and of the sync in flight). Zero, the
	// default, syncs every batch before acknowledging it. See DESIGN.md.
	SyncInterval time.Duration
	// Now stamps records that come without a time; default time.Now.
	Now func() time.Time
}

// Defaults and sizes of the writer.
const (
	defaultMaxBatch = 1024
	defaultMaxDelay = 2 * time.Millisecond
	// maxYields bounds how often the writer yields its processor before
	// writing one batch (see take).
	maxYields = 16
	// maxBatchBytes ends a batch once its records take this much, so that
	// a write torn by a crash stays within the part of the file Open reads.
	maxBatchBytes = 1 << 20
	// preallocChunk is how much zeroed space the writer keeps ahead of the
	// records, so that an fdatasync flushes data blocks only: a write past
	// the end of the file changes its size and block map, and writing those
	// out made each sync about 1.5 times as expensive on the machines we
	// measured (BENCHMARKS.md, "Audit log").
	preallocChunk = 4 << 20
	// preallocGap is left between the end of the records and new zeroed
	// space when there is none ahead of them (a log just opened), so that
	// the writer goes on appending while the space is being zeroed.
	preallocGap = 256 << 10
)

// Log is an open audit log. Its methods are safe for concurrent use.
type Log struct {
	path     string
	log      *slog.Logger
	maxBatch int
	maxDelay time.Duration
	interval time.Duration // SyncInterval; 0 syncs every batch
	now      func() time.Time
	f        *os.File
	unlock   func()

	mu        sync.Mutex
	cur       *batch   // batch accepting records; nil if none
	full      []*batch // full batches waiting for the writer, oldest first
	spareData []byte   // buffers of a committed batch, for reuse
	spareEnds []int
	lastBatch int // records in the last batch committed
	closing   bool
	err       error // sticky write or sync failure
	waiting   writerState
	head      struct {
		seq  uint64
		hash string
	}

	wake      chan struct{} // the writer has something to look at (capacity 1)
	done      chan struct{} // writer exited
	unsynced  chan struct{} // with SyncInterval: written and not yet synced (capacity 1)
	stopSync  chan struct{} // closed by Close once the writer has exited
	syncDone  chan struct{} // the background syncer exited
	closeOnce sync.Once
	closeErr  error

	// Owned by the writer goroutine.
	seq   uint64
	prev  [sha256.Size * 2]byte // hex hash of the last record
	buf   []byte
	off   int64 // end of the records in the file
	space space
	timer *time.Timer

	// Test hooks; set before the first Append.
	syncFn   func() error // fdatasync, or a test's replacement
	onCommit func(n int)  // called with each batch size after its sync
	syncs    atomic.Uint64
}

// writerState is what the writer waits for, so that Append wakes it only
// when it has a reason to look.
type writerState int

const (
	writerBusy    writerState = iota // writing, or about to look at the queue
	writerIdle                       // waiting for a record
	writerHolding                    // holding a batch open for more records
)

type batch struct {
	data  []byte    // encoded records without seq and prev (appendMiddle), one after the other
	ends  []int     // end of each record in data
	start time.Time // when the first record queued
	seq   uint64    // seq of the first record, set by commit
	err   error     // failure of the whole batch
	done  chan struct{}
}

// Open opens the log at cfg.Path, creating it if needed, and starts its
// writer. On an existing log it verifies the records at its tail, resumes
// their sequence and chain, and truncates a torn write at its end (a crash
// in the middle of a write), saying so in the log. A tail that does not
// verify is an error matching ErrBroken: the node must not append to a
// tampered log. Only one Log at a time may have a file open (an exclusive
// flock).
func Open(cfg Config) (*Log, error) {
	if cfg.Path == "" {
		return nil, errors.New("audit: no path")
	}
	if cfg.SyncInterval < 0 {
		return nil, fmt.Errorf("audit: negative SyncInterval %v", cfg.SyncInterval)
	}
	l := &Log{
		path:     cfg.Path,
		log:      cfg.Logger,
		maxBatch: cfg.MaxBatch,
		maxDelay: cfg.MaxDelay,
		interval: cfg.SyncInterval,
		now:      cfg.Now,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		unsynced: make(chan struct{}, 1),
		stopSync: make(chan struct{}),
		syncDone: make(chan struct{}),
	}
	copy(l.prev[:], zeroHash)
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("audit_log", cfg.Path)
	if l.maxBatch <= 0 {
		l.maxBatch = defaultMaxBatch
	}
	if l.maxDelay == 0 {
		l.maxDelay = defaultMaxDelay
	}
	if l.now == nil {
		l.now = time.Now
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR|os.O_CREATE, 0o600)
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
	l.head.seq, l.head.hash = l.seq, string(l.prev[:])
	l.space.l = l
	go l.run()
	if l.interval > 0 {
		go l.syncInBackground()
	} else {
		close(l.syncDone)
	}
	return l, nil
}

// tailWindow is how much of the end of the data Open verifies. It holds a
// write torn by a crash (one batch: a little over maxBatchBytes, plus one
// line) and before it at least one whole line and the newline before that.
const tailWindow = maxBatchBytes + 3*maxLine

// recover finds the end of the records, verifies the complete lines of the
// tail window, sets seq and prev from the last one, and cuts the file after
// the last whole record, dropping a torn write and preallocated space. A log
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
	dataEnd, err := l.dataEnd(size)
	if err != nil {
		return err
	}
	start := max(dataEnd-tailWindow, 0)
	buf := make([]byte, dataEnd-start)
	if _, err := l.f.ReadAt(buf, start); err != nil && err != io.EOF {
		return fmt.Errorf("audit: reading tail: %w", err)
	}
	// A crash may leave a write half done: lost pages read as NUL bytes (the
	// space was zeroed beforehand), and the records end at the last newline
	// before the first of them.
	whole := buf
	if z := bytes.IndexByte(whole, 0); z >= 0 {
		whole = whole[:z]
	}
	end := bytes.LastIndexByte(whole, '\n') + 1 // bytes of buf up to the last newline
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
	keep := start + int64(end)
	if keep != size {
		if err := l.f.Truncate(keep); err != nil {
			return fmt.Errorf("audit: truncating the end of the log: %w", err)
		}
	}
	if torn := dataEnd - keep; torn > 0 {
		l.log.Warn("audit log ended in a torn write (crash during a write); truncated it",
			"offset", keep, "bytes_dropped", torn)
	}
	l.seq, l.off = c.seq, keep
	copy(l.prev[:], c.prev)
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

// dataEnd returns the offset after the last byte of the file that is not
// NUL: zeroed space a writer preallocated and did not fill is not part of
// the log.
func (l *Log) dataEnd(size int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		n := min(end, chunk)
		b := buf[:n]
		if _, err := l.f.ReadAt(b, end-n); err != nil && err != io.EOF {
			return 0, fmt.Errorf("audit: reading tail: %w", err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return end - n + int64(i) + 1, nil
			}
		}
		end -= n
	}
	return 0, nil
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

// scratch holds a record's encoding between encoding it, in the caller's
// goroutine and outside the lock, and copying it into a batch.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

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
	sp := scratch.Get().(*[]byte)
	m := appendMiddle((*sp)[:0], &r)
	defer func() {
		if cap(m) <= 64<<10 {
			*sp = m
			scratch.Put(sp)
		}
	}()
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
		b = l.newBatch()
		l.cur = b
	}
	i := len(b.ends)
	b.data = append(b.data, m...)
	b.ends = append(b.ends, len(b.data))
	if len(b.ends) >= l.maxBatch || len(b.data) >= maxBatchBytes {
		l.full = append(l.full, b)
		l.cur = nil
	}
	switch l.waiting {
	case writerIdle:
		l.waiting = writerBusy
		signal(l.wake)
	case writerHolding:
		if l.cur == nil || len(l.cur.ends) >= l.lastBatch-1 {
			l.waiting = writerBusy
			signal(l.wake)
		}
	}
	l.mu.Unlock()

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

// newBatch returns an empty batch, with the buffers of a committed one if
// there are. l.mu is held.
func (l *Log) newBatch() *batch {
	b := &batch{data: l.spareData[:0], ends: l.spareEnds[:0], start: time.Now(), done: make(chan struct{})}
	l.spareData, l.spareEnds = nil, nil
	return b
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Head returns the seq and hash of the last acknowledged record (0 and 64
// zeros for an empty log). Publishing it elsewhere from time to time lets a
// verifier detect records cut off the end of the log.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head.seq, l.head.hash
}

// Close commits the records already queued, stops the writer, gives back
// the preallocated space and closes the file. Appends after Close fail with
// ErrClosed. Close returns the log's write or sync failure, if any.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closing = true
		l.waiting = writerBusy
		signal(l.wake)
		l.mu.Unlock()
		<-l.done
		close(l.stopSync)
		<-l.syncDone
		l.space.wait()
		l.mu.Lock()
		failed := l.err
		l.mu.Unlock()
		if failed == nil {
			// A cleanly closed log ends with its last record, for tools
			// that know nothing of preallocated space.
			if err := l.f.Truncate(l.off); err != nil {
				l.closeErr = fmt.Errorf("audit: %w", err)
			} else if err := l.syncFn(); err != nil {
				l.closeErr = fmt.Errorf("audit: %w", err)
			}
		}
		// Records per sync show how well group commit works under the
		// node's load.
		l.log.Info("audit log closed", "seq", l.seq, "syncs", l.syncs.Load())
		l.unlock()
		if err := l.f.Close(); err != nil && l.closeErr == nil {
			l.closeErr = fmt.Errorf("audit: %w", err)
		}
		if failed != nil {
			l.closeErr = failed
		}
	})
	return l.closeErr
}

// run is the writer: it takes one batch at a time and commits it.
func (l *Log) run() {
	defer close(l.done)
	for {
		b := l.take()
		if b == nil {
			return
		}
		l.commit(b)
	}
}

// take waits for the next batch to commit and returns it, or nil once the
// log is closing and nothing is left.
//
// The next batch is what queued while the last one was being written (group
// commit). Two things make batches larger under load, and cost an idle log
// nothing:
//
//   - A batch smaller than the one before it is held open, up to MaxDelay
//     after its first record, until it is about as large. The Appends a
//     commit releases are mostly requests whose clients send their next one
//     at once; without the hold, the first of them to come back was written
//     alone while the others queued behind its sync (measured: a node with
//     21 callers alternated between batches of 21 and of 1).
//   - Before writing, the writer yields its processor for as long as the
//     batch keeps growing, so that goroutines ready to run append first
//     (requests that finished their work while the writer ran). With nothing
//     else to run, yielding returns at once.
func (l *Log) take() *batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	yields := 0
	for {
		l.waiting = writerBusy
		switch {
		case len(l.full) > 0:
			b := l.full[0]
			l.full[0] = nil
			l.full = l.full[1:]
			return b
		case l.cur != nil:
			n := len(l.cur.ends)
			left := l.maxDelay - time.Since(l.cur.start)
			open := left > 0 && !l.closing && l.err == nil
			if open && n < l.lastBatch-1 {
				l.waiting = writerHolding
				l.mu.Unlock()
				l.sleep(left)
				l.mu.Lock()
				continue
			}
			if open && yields < maxYields {
				yields++
				l.mu.Unlock()
				runtime.Gosched()
				l.mu.Lock()
				if l.cur == nil || len(l.cur.ends) > n {
					continue
				}
			}
			b := l.cur
			l.cur = nil
			return b
		case l.closing:
			return nil
		default:
			l.waiting = writerIdle
			l.mu.Unlock()
			<-l.wake
			l.mu.Lock()
		}
	}
}

// sleep waits for d or a signal on l.wake.
func (l *Log) sleep(d time.Duration) {
	if l.timer == nil {
		l.timer = time.NewTimer(d)
	} else {
		l.timer.Reset(d)
	}
	select {
	case <-l.timer.C:
	case <-l.wake:
		l.timer.Stop()
	}
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
	seq := l.seq
	prev := l.prev
	from := 0
	for _, to := range b.ends {
		seq++
		buf = appendLine(buf, seq, &prev, b.data[from:to])
		from = to
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf
	}
	l.space.reserve(l.off, int64(len(buf)))
	var n int
	n, err = l.f.WriteAt(buf, l.off)
	if err == nil {
		l.off += int64(n)
		if l.interval > 0 {
			signal(l.unsynced)
		} else {
			l.syncs.Add(1)
			err = l.syncFn()
		}
	}
	if err != nil {
		b.err = l.fail(err)
		return
	}
	b.seq = l.seq + 1
	l.seq, l.prev = seq, prev
	hash := string(prev[:])
	l.mu.Lock()
	l.head.seq, l.head.hash = seq, hash
	l.lastBatch = len(b.ends)
	if cap(b.data) <= 4<<20 {
		// The batch's Appends read only its seq and err from now on.
		l.spareData, l.spareEnds = b.data, b.ends
	}
	l.mu.Unlock()
	if l.onCommit != nil {
		l.onCommit(len(b.ends))
	}
}

// fail makes a write or sync failure sticky: every later Append returns it.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("audit: %s: %w", l.path, err)
	l.log.Error("audit log write failed; refusing further appends", "err", err)
	l.mu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.mu.Unlock()
	return err
}

// syncInBackground is the syncer of a log with SyncInterval: after a write,
// it waits out the rest of the interval since its last sync, then syncs
// everything written so far. It exits when Close stops it (Close syncs what
// is left) or when a sync fails.
func (l *Log) syncInBackground() {
	defer close(l.syncDone)
	var last time.Time
	for {
		select {
		case <-l.unsynced:
		case <-l.stopSync:
			return
		}
		if wait := l.interval - time.Since(last); wait > 0 {
			select {
			case <-time.After(wait):
			case <-l.stopSync:
				return
			}
		}
		last = time.Now()
		l.syncs.Add(1)
		if err := l.syncFn(); err != nil {
			l.fail(err)
			return
		}
	}
}

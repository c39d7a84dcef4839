package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
)

// crashChildEnv names the log a re-executed test binary appends to until it
// is killed; crashIntervalEnv, when set, is the child's SyncInterval.
const (
	crashChildEnv    = "TRENT_AUDIT_CRASH_CHILD"
	crashIntervalEnv = "TRENT_AUDIT_CRASH_SYNC_INTERVAL"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(2) // not reached: the parent kills the child
	}
	os.Exit(m.Run())
}

// crashChild appends from 32 goroutines forever and prints "ack SEQ ID" for
// every acknowledged record. Each line is one write to the pipe, so a line
// the parent reads is a whole acknowledgement.
func crashChild(path string) {
	cfg := Config{Path: path, Logger: slog.New(slog.DiscardHandler)}
	if v := os.Getenv(crashIntervalEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		cfg.SyncInterval = d
	}
	l, err := Open(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	pad := strings.Repeat("x", 1500) // large batches make torn writes likely
	var mu sync.Mutex
	for g := range 32 {
		go func() {
			for i := 0; ; i++ {
				r := testRecord(i)
				r.RequestID = fmt.Sprintf("p%d-g%d-%d", os.Getpid(), g, i)
				r.EncryptionContext = map[string]string{"pad": pad}
				seq, err := l.append(context.Background(), r)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %s\n", seq, r.RequestID)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashSafety kills a child process with SIGKILL in the middle of a
// stream of appends, three times on the same log: every record the child saw
// acknowledged is on disk, the chain verifies, and a torn tail is dropped.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	crashRounds(t)
}

// TestCrashSafetyWithSyncInterval: with a background sync, an acknowledged
// record is in the page cache, which a crash of the process does not lose.
// (A crash of the machine may; no test here can cut the power.)
func TestCrashSafetyWithSyncInterval(t *testing.T) {
	t.Parallel()
	crashRounds(t, crashIntervalEnv+"=5ms")
}

func crashRounds(t *testing.T, env ...string) {
	path := filepath.Join(t.TempDir(), "audit.log")
	acked := map[uint64]string{}
	for round := range 3 {
		var stderr bytes.Buffer
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), crashChildEnv+"="+path), env...)
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 300 + 250*round
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			var seq uint64
			var id string
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %s", &seq, &id); err != nil {
				cmd.Process.Kill()
				t.Fatalf("child said %q", sc.Text())
			}
			if prev, dup := acked[seq]; dup {
				cmd.Process.Kill()
				t.Fatalf("seq %d acknowledged twice (%s, %s)", seq, prev, id)
			}
			acked[seq] = id
			if n++; n == killAfter {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatal(err)
				}
			}
		}
		cmd.Wait()
		if n < killAfter {
			t.Fatalf("child stopped after %d acks: %s", n, stderr.String())
		}

		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		records, torn := tornTail(data)
		if round == 2 && torn == 0 {
			// Make sure the recovery path runs at least once.
			f, _ := os.OpenFile(path, os.O_WRONLY, 0)
			f.WriteAt(bytes.Repeat([]byte{'{'}, 700), int64(records))
			f.Close()
			data, _ = os.ReadFile(path)
			if records, torn = tornTail(data); torn != 700 {
				t.Fatalf("forced a torn tail of 700 bytes, found %d", torn)
			}
		}
		t.Logf("round %d: %d acks read, file %d bytes, records %d bytes, torn tail %d bytes", round, n, len(data), records, torn)

		var logs testlog.Buffer
		l, err := Open(Config{Path: path, Logger: testLogger(&logs)})
		if err != nil {
			t.Fatalf("reopen after crash: %v", err)
		}
		seq, _ := l.Head()
		l.Close()
		if torn > 0 && !strings.Contains(logs.String(), fmt.Sprintf("bytes_dropped=%d", torn)) {
			t.Fatalf("torn tail of %d bytes not reported: %s", torn, logs.String())
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, data[:records]) {
			t.Fatalf("after reopening, the file is %d bytes; want the %d bytes of whole records", len(after), records)
		}
		if count := verifyFile(t, path); uint64(count) != seq {
			t.Fatalf("Verify = %d, Head = %d", count, seq)
		}
		onDisk := map[uint64]string{}
		for _, r := range readAll(t, path) {
			onDisk[r.Seq] = r.RequestID
		}
		for s, id := range acked {
			if onDisk[s] != id {
				t.Fatalf("acknowledged seq %d (%s) is on disk as %q", s, id, onDisk[s])
			}
		}
	}
}

// tornTail splits a log left by a crash: records is the length of the whole
// records, which end at the last newline before the first NUL byte;
// torn counts the bytes from there to the last byte that is not NUL (the
// remains of the write the crash interrupted; preallocated space follows).
func tornTail(data []byte) (records, torn int) {
	whole := data
	if z := bytes.IndexByte(whole, 0); z >= 0 {
		whole = whole[:z]
	}
	records = bytes.LastIndexByte(whole, '\n') + 1
	end := len(bytes.TrimRight(data, "\x00"))
	return records, max(end-records, 0)
}

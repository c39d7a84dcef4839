package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trent-kms/trent/internal/testlog"
	"github.com/trent-kms/trent/node/nodetest"
	"github.com/trent-kms/trent/transport/audit"
	"github.com/trent-kms/trent/transport/kmspb"
	"github.com/trent-kms/trent/transport/pki"
)

// kmsdChildEnv makes the test binary run kmsd itself, so that a test can
// kill a real kmsd process.
const kmsdChildEnv = "TRENT_KMSD_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(kmsdChildEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestAnsweredRequestsAreAuditedAfterKmsdIsKilled kills kmsd, with its
// default audit settings, by SIGKILL while 16 clients encrypt: every Encrypt
// it answered has its record in the audit log, and the log verifies.
func TestAnsweredRequestsAreAuditedAfterKmsdIsKilled(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "trent-data")
	cmd := exec.Command(os.Args[0], "-dev", "-data-dir", dataDir, "-grpc-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), kmsdChildEnv+"=1")
	var stdout, stderr testlog.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(kill)

	readyLine := regexp.MustCompile(`ready grpc=(\S+)`)
	var ready []string
	nodetest.WaitFor(t, 30*time.Second, "kmsd's ready line", func() bool {
		select {
		case err := <-exited:
			killed = true
			t.Fatalf("kmsd exited before it was ready (%v): %s", err, stderr.String())
		default:
		}
		ready = readyLine.FindStringSubmatch(stdout.String())
		return ready != nil
	})
	conn, err := nodetest.DialTLS(ready[1], filepath.Join(dataDir, pki.DevTLSDir, pki.DevAdminDir))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := kmspb.NewKMSClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := client.CreateKey(ctx, &kmspb.CreateKeyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keyID := created.GetKeyMetadata().GetKeyId()

	const clients = 16
	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		wg       sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			for i := c; ; i += clients {
				n := strconv.Itoa(i)
				_, err := client.Encrypt(ctx, &kmspb.EncryptRequest{
					KeyId: keyID, Plaintext: []byte("audited"), EncryptionContext: map[string]string{"n": n},
				})
				if err != nil {
					return // kmsd is gone
				}
				mu.Lock()
				answered[n] = true
				mu.Unlock()
			}
		})
	}
	nodetest.WaitFor(t, 30*time.Second, "500 answered Encrypt requests", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answered) >= 500
	})
	kill() // with requests in flight
	wg.Wait()
	if strings.Contains(stderr.String(), "DATA RACE") {
		t.Errorf("kmsd reported a data race:\n%s", stderr.String())
	}

	// Opening the log drops the tail of a write the kill cut short; no
	// answered request's record can be in it.
	path := filepath.Join(dataDir, "audit.log")
	l, err := audit.Open(audit.Config{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("audit log after the kill: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := audit.Verify(f); err != nil {
		t.Fatalf("audit verify after the kill: %v", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	err = audit.Scan(f, audit.Filter{Operation: "Encrypt"}, func(r audit.Record) error {
		if r.Outcome == audit.OutcomeAllowed {
			audited[r.EncryptionContext["n"]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for n := range answered {
		if !audited[n] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d answered Encrypt requests have no audit record", missing, len(answered))
	}
	t.Logf("%d answered, %d audited", len(answered), len(audited))
}

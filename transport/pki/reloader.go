package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPollInterval is how often a Reloader looks at its files when
// NewReloader is given a zero interval.
const DefaultPollInterval = 5 * time.Second

// material is one consistent set of certificate, key and trusted CAs.
type material struct {
	cert *tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
	id   Identity
}

// Reloader holds a certificate, its key and the CA certificates it trusts,
// and swaps in new ones when the files change (polled) or on Reload. Every
// TLS config it returns reads the current material at each handshake, so
// rotation needs no restart and open connections are left alone.
//
// New material is accepted only if the key matches the certificate, the
// certificate verifies against the new CA file at the current time, carries
// a Trent identity, and that identity (kind, principal or region and node id)
// is the one already loaded. Otherwise the old material stays and the error
// is logged; the same broken files are not retried until they change again.
type Reloader struct {
	certFile, keyFile, caFile string
	logger                    *slog.Logger
	now                       func() time.Time

	cur atomic.Pointer[material]

	mu   sync.Mutex // serializes loads; guards seen
	seen [3]fileStamp

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewReloader loads certFile, keyFile and caFile (PEM; caFile may hold
// several CA certificates, e.g. old and new during a CA rotation) and starts
// watching them: every poll (DefaultPollInterval if zero; never if
// negative) it compares their modification time, size and inode with what it
// last loaded, and reloads once they differ and have then stayed the same for
// one more poll (so a change is picked up within two polls). A nil logger
// discards.
func NewReloader(certFile, keyFile, caFile string, logger *slog.Logger, poll time.Duration) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{
		certFile: certFile, keyFile: keyFile, caFile: caFile,
		logger: logger,
		now:    time.Now,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	r.seen = r.stat()
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.logLoaded("tls: certificate loaded", m)
	if poll == 0 {
		poll = DefaultPollInterval
	}
	if poll > 0 {
		go r.watch(poll)
	} else {
		close(r.done)
	}
	return r, nil
}

// Reload reads the files now, whether or not they changed (kmsd calls it on
// SIGHUP). On error the current material stays in use; the error is logged
// and returned.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked("reload requested")
}

// Close stops watching the files. Configs already handed out keep working
// with the last material.
func (r *Reloader) Close() {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.done
}

// Identity is the identity of the current certificate.
func (r *Reloader) Identity() Identity { return r.cur.Load().id }

// Certificate is the current leaf certificate.
func (r *Reloader) Certificate() *x509.Certificate { return r.cur.Load().leaf }

func (r *Reloader) watch(poll time.Duration) {
	defer close(r.done)
	t := time.NewTicker(poll)
	defer t.Stop()
	r.mu.Lock()
	prev := r.seen
	r.mu.Unlock()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		// Load only files that have not changed for a whole interval, so
		// a rotation writing key and certificate one after the other is
		// not caught half done.
		now := r.stat()
		if now != prev {
			prev = now
			continue
		}
		r.mu.Lock()
		if now != r.seen {
			_ = r.reloadLocked("files changed")
		}
		r.mu.Unlock()
	}
}

func (r *Reloader) reloadLocked(trigger string) error {
	r.seen = r.stat()
	m, err := r.load()
	if err == nil {
		if old := r.cur.Load(); !sameIdentity(old.id, m.id) {
			err = fmt.Errorf("certificate identity changed from %s to %s; a node or principal keeps its identity across rotation", old.id, m.id)
		}
	}
	if err != nil {
		r.logger.Error("tls: reload failed, keeping the current certificate",
			"trigger", trigger, "cert", r.certFile, "err", err)
		return err
	}
	r.cur.Store(m)
	r.logLoaded("tls: certificate reloaded", m)
	return nil
}

func (r *Reloader) logLoaded(msg string, m *material) {
	r.logger.Info(msg, "identity", m.id.String(), "serial", m.leaf.SerialNumber.Text(16),
		"not_after", m.leaf.NotAfter.UTC().Format(time.RFC3339), "cert", r.certFile)
}

func sameIdentity(a, b Identity) bool {
	return a.Kind == b.Kind && a.Principal == b.Principal && a.Region == b.Region && a.NodeID == b.NodeID
}

// load reads and checks one set of files. Errors name files, never key bytes.
func (r *Reloader) load() (*material, error) {
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(r.caFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", r.certFile, r.keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", r.certFile, err)
		}
		pair.Leaf = leaf
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		if !c.IsCA {
			return nil, fmt.Errorf("%s: certificate %q is not a CA", r.caFile, c.Subject.CommonName)
		}
		pool.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.certFile, err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		CurrentTime:   r.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%s does not verify against %s: %w", r.certFile, r.caFile, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.certFile, err)
	}
	return &material{cert: &pair, leaf: leaf, pool: pool, id: id}, nil
}

// fileStamp is what polling compares: a file's identity, size and
// modification time, or why it could not be looked at.
type fileStamp struct {
	dev, ino uint64
	size     int64
	mtime    int64
	err      string
}

func (r *Reloader) stat() [3]fileStamp {
	var s [3]fileStamp
	for i, name := range []string{r.certFile, r.keyFile, r.caFile} {
		fi, err := os.Stat(name)
		if err != nil {
			s[i].err = err.Error()
			continue
		}
		s[i].dev, s[i].ino = fileID(fi)
		s[i].size = fi.Size()
		s[i].mtime = fi.ModTime().UnixNano()
	}
	return s
}

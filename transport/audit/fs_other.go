//go:build !linux

package audit

import "os"

// fdatasync falls back to a full fsync where fdatasync is unavailable.
func (l *Log) fdatasync() error { return l.f.Sync() }

// lockFile does not lock outside Linux: run one writer per log.
func lockFile(*os.File) (unlock func(), err error) { return func() {}, nil }

// syncDir makes a new file's directory entry durable, where supported.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // not supported on every system
	return nil
}

//go:build unix

package pki

import (
	"os"
	"syscall"
)

// fileID is the device and inode of a file, so a rename over it is noticed
// even when size and modification time happen to match.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) // field types differ by platform
	}
	return 0, 0
}

//go:build unix

package filesystem

import (
	"io/fs"
	"os"
	"syscall"
)

// Extra open flags. O_NONBLOCK makes opening a FIFO return at once instead
// of waiting for a writer; the opened descriptor's mode then refuses it.
const (
	openReadFlags = syscall.O_NONBLOCK
	openDirFlags  = syscall.O_NONBLOCK | syscall.O_DIRECTORY
)

// linkCount returns the hard-link count from the fstat of the open file.
func linkCount(_ *os.File, fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Nlink), true
}

//go:build windows

package filesystem

import (
	"io/fs"
	"os"
	"syscall"
)

const (
	openReadFlags = 0
	openDirFlags  = 0
)

// linkCount asks the open handle: a Windows FileInfo does not carry it.
func linkCount(f *os.File, _ fs.FileInfo) (uint64, bool) {
	if f == nil {
		return 0, false
	}
	var d syscall.ByHandleFileInformation
	if err := syscall.GetFileInformationByHandle(syscall.Handle(f.Fd()), &d); err != nil {
		return 0, false
	}
	return uint64(d.NumberOfLinks), true
}

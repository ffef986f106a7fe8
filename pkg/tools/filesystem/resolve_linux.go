package filesystem

import (
	"os"
	"strconv"
)

// descriptorPath asks the kernel where an open file is. It goes through
// SyscallConn so that the file keeps its non-blocking mode (File.Fd would
// reset it).
func descriptorPath(f *os.File) (string, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return "", err
	}
	var p string
	var lerr error
	if err := rc.Control(func(fd uintptr) {
		p, lerr = os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
	}); err != nil {
		return "", err
	}
	return p, lerr
}

// directoryRoot returns an os.Root for the directory that dir has open,
// through /proc/self/fd: exactly that directory, whatever happened to its
// path since it was opened. The fallback is reopening rel in root.
func directoryRoot(root *os.Root, rel string, dir *os.File) (*os.Root, error) {
	rc, err := dir.SyscallConn()
	if err != nil {
		return nil, err
	}
	var r *os.Root
	var oerr error
	if err := rc.Control(func(fd uintptr) {
		r, oerr = os.OpenRoot("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
	}); err != nil {
		return nil, err
	}
	if oerr != nil {
		return reopenRoot(root, rel, dir)
	}
	return r, nil
}

//go:build windows

package state

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows"
)

func lockFile(path string, flags uint32) (unlock func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	ol := new(windows.Overlapped)
	if err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, ol); err != nil {
		f.Close()
		if err == windows.ERROR_LOCK_VIOLATION {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
		f.Close()
	}, true, nil
}

// LockFile takes an exclusive lock on path, waiting for other holders.
func LockFile(path string) (unlock func(), err error) {
	unlock, _, err = lockFile(path, windows.LOCKFILE_EXCLUSIVE_LOCK)
	return unlock, err
}

// TryLockFile is LockFile without waiting.
func TryLockFile(path string) (unlock func(), ok bool, err error) {
	return lockFile(path, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY)
}

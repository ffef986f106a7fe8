//go:build unix

package state

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Every SQLite connection to a database in WAL mode holds a shared POSIX
// lock on one byte of the "-shm" file for as long as it is open (the
// "dead-man switch", byte 120+8 = 128 in SQLite's unix VFS: UNIX_SHM_DMS),
// and takes it exclusively when it is the first to open the database
// (https://sqlite.org/walformat.html, "Locks"). An exclusive lock on that
// byte is therefore held only while no other process has the database open,
// and while it is held, no process can open it: its connection finds the
// byte locked and waits in its busy handler. These are fcntl locks, which
// belong to the process, so this process must not have the database open
// itself while it probes or holds the lock.
const shmDeadManSwitch = 128

// ErrDatabaseInUse means another process has the state database open.
var ErrDatabaseInUse = errors.New("the state database is in use")

// InUseError names a process that has the database open.
type InUseError struct {
	Path string
	PID  int // 0 when the system does not say
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is open in process %d", e.Path, e.PID)
	}
	return fmt.Sprintf("%s is open in another process", e.Path)
}

// Is makes errors.Is(err, ErrDatabaseInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrDatabaseInUse }

// LockDatabase takes the database at path for this process alone: it
// fails with an *InUseError when another process has it open, and keeps
// every other process from opening it until release. The "-shm" file is
// created (mode 0600) when absent, so that a process starting meanwhile
// finds it locked too. This process must not have the database open.
func LockDatabase(path string) (release func(), err error) {
	f, err := os.OpenFile(path+"-shm", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: shmDeadManSwitch, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			pid, _ := lockHolder(f)
			return nil, &InUseError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

// CheckDatabaseNotInUse returns an *InUseError when another process has
// the database at path open, without locking or creating anything: a
// database without a "-shm" file has no open WAL connection.
func CheckDatabaseNotInUse(path string) error {
	f, err := os.Open(path + "-shm")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking whether %s is in use: %w", path, err)
	}
	defer f.Close()
	if pid, held := lockHolder(f); held {
		return &InUseError{Path: path, PID: pid}
	}
	return nil
}

// lockHolder says whether another process holds the byte, and which
// (pid 0 when the system does not say).
func lockHolder(f *os.File) (pid int, held bool) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: shmDeadManSwitch, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return 0, false
	}
	return max(int(lk.Pid), 0), true
}

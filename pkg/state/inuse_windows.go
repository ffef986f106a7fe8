//go:build windows

package state

import (
	"errors"
	"fmt"
)

// ErrDatabaseInUse means another process has the state database open.
var ErrDatabaseInUse = errors.New("the state database is in use")

// InUseError names a process that has the database open.
type InUseError struct {
	Path string
	PID  int
}

func (e *InUseError) Error() string { return fmt.Sprintf("%s is open in another process", e.Path) }

// Is makes errors.Is(err, ErrDatabaseInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrDatabaseInUse }

// LockDatabase cannot tell on Windows whether another process has the
// database open (SQLite's win32 VFS locks differently); there, renaming
// a database another process holds open fails instead.
func LockDatabase(path string) (release func(), err error) { return func() {}, nil }

// CheckDatabaseNotInUse cannot tell on Windows (see LockDatabase).
func CheckDatabaseNotInUse(path string) error { return nil }

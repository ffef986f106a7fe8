package code

import (
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// restrictFilesystem takes away all filesystem access (and, where the
// kernel supports it, TCP bind/connect, abstract unix sockets and
// signals to other processes) with Landlock: a ruleset that handles every
// access right the kernel knows and grants none, applied with
// landlock_restrict_self after prctl(PR_SET_NO_NEW_PRIVS). Files already
// open (stdin, stdout, stderr) stay usable.
//
// Landlock restricts one thread per call. In a binary without cgo (release
// builds are CGO_ENABLED=0) syscall.AllThreadsSyscall applies it to every
// thread of the process. In a cgo binary that is impossible, and only the
// calling thread is restricted: RunChild locks the interpreter to that
// thread, so the program's code runs restricted but the runtime's other
// threads do not.
//
// It returns what is in force, for the result's "landlock" field:
// "enforced (ABI N, all threads)", "enforced (ABI N, interpreter thread)"
// or "unavailable: REASON" (kernel without Landlock: ENOSYS, EOPNOTSUPP).
func restrictFilesystem() string {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return "unavailable: " + errno.Error()
	}
	attr, size := rulesetFor(int(abi))
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return "unavailable: landlock_create_ruleset: " + errno.Error()
	}
	defer unix.Close(int(fd))

	_, _, errno = syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	if errno == 0 {
		if _, _, errno = syscall.AllThreadsSyscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
			return "unavailable: landlock_restrict_self: " + errno.Error()
		}
		return fmt.Sprintf("enforced (ABI %d, all threads)", abi)
	}
	if errno != syscall.ENOTSUP {
		return "unavailable: prctl(PR_SET_NO_NEW_PRIVS): " + errno.Error()
	}
	// cgo binary: this thread only.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return "unavailable: prctl(PR_SET_NO_NEW_PRIVS): " + err.Error()
	}
	if _, _, errno = unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return "unavailable: landlock_restrict_self: " + errno.Error()
	}
	return fmt.Sprintf("enforced (ABI %d, interpreter thread)", abi)
}

// rulesetFor returns the ruleset attribute for a kernel ABI version and
// the size to pass: handling a right the kernel does not know is EINVAL.
func rulesetFor(abi int) (unix.LandlockRulesetAttr, uintptr) {
	const (
		fsV1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
			unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
			unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
			unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
			unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	)
	var a unix.LandlockRulesetAttr
	size := unsafe.Offsetof(a.Handled_access_net)
	a.Handled_access_fs = fsV1
	if abi >= 2 {
		a.Handled_access_fs |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		a.Handled_access_fs |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 4 {
		a.Handled_access_net = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size = unsafe.Offsetof(a.Scoped)
	}
	if abi >= 5 {
		a.Handled_access_fs |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	if abi >= 6 {
		a.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size = unsafe.Offsetof(a.Quiet_access_fs)
	}
	return a, size
}

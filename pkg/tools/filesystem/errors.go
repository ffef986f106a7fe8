package filesystem

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// escapeMessage is the text of os.Root's unexported errPathEscapes. Paths
// given to a root never contain ".." or a leading "/" here, so an escape is
// always a symbolic link pointing out; TestSymlinkEscapeRefused keeps this
// in step with the Go release.
const escapeMessage = "path escapes from parent"

// describe turns an error from an os.Root operation into one that names the
// virtual path only. os errors carry the path they were given, and a host
// path must never reach a result; so the message is rebuilt from the
// underlying errno and vp.
func describe(op, vp string, err error) error {
	var errno syscall.Errno
	inner := err
	for {
		u := errors.Unwrap(inner)
		if u == nil {
			break
		}
		inner = u
	}
	switch {
	case inner.Error() == escapeMessage:
		return tools.Refuse("symlink", "%s: a symbolic link leads outside the root; links may only point inside it", vp)
	case errors.Is(err, syscall.ELOOP):
		return tools.Refuse("symlink", "%s: too many levels of symbolic links", vp)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: no such file or directory", op, vp)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %s: permission denied", op, vp)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s %s: already exists", op, vp)
	case errors.As(err, &errno):
		return fmt.Errorf("%s %s: %s", op, vp, errno.Error())
	}
	var pe *os.PathError
	var le *os.LinkError
	if errors.As(err, &pe) || errors.As(err, &le) {
		// The wrapped error, not its path.
		return fmt.Errorf("%s %s: %s", op, vp, inner.Error())
	}
	return fmt.Errorf("%s %s: failed", op, vp)
}

//go:build !linux

package filesystem

import (
	"errors"
	"os"
)

// descriptorPath is not available here; resolved falls back to walking the
// path through the root and comparing the result with the open file.
func descriptorPath(*os.File) (string, error) {
	return "", errors.New("descriptor paths are not available on this system")
}

// directoryRoot reopens rel in root and checks that it is still the
// directory dir has open.
func directoryRoot(root *os.Root, rel string, dir *os.File) (*os.Root, error) {
	return reopenRoot(root, rel, dir)
}

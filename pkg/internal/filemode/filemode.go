// Package filemode holds the one rule agentmesh applies to files that hold
// secrets (private keys in the state directory, ${file:PATH} secrets in the
// configuration): like ssh, refuse any that group or others may access.
// It is a leaf package so that small packages can apply the rule without
// importing the state directory's database.
package filemode

import (
	"io/fs"
	"runtime"
)

// OwnerOnly reports whether group and others have no access at all to the
// file (mode bits 0o077 clear). Windows has no such bits: there it is
// always true.
func OwnerOnly(fi fs.FileInfo) bool {
	return runtime.GOOS == "windows" || fi.Mode().Perm()&0o077 == 0
}

//go:build !unix && !windows

package filesystem

import (
	"io/fs"
	"os"
)

const (
	openReadFlags = 0
	openDirFlags  = 0
)

// linkCount is unknown here, so files are refused unless allow_hardlinks.
func linkCount(*os.File, fs.FileInfo) (uint64, bool) { return 0, false }

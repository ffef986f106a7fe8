//go:build !unix

package sampledata_test

import "io/fs"

func nlink(fs.FileInfo) uint64 { return 0 }

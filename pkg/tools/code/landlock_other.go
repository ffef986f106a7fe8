//go:build !linux

package code

// restrictFilesystem: Landlock is Linux-only.
func restrictFilesystem() string { return "unavailable: not Linux" }

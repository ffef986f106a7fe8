//go:build unix && !linux

package code

// platformLimits adds nothing outside Linux: RLIMIT_DATA does not bound
// mmap'd memory on the BSDs and macOS, where the Go heap lives.
func platformLimits(request) ([]string, error) { return nil, nil }

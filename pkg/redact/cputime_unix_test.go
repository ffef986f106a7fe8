//go:build unix

package redact

import (
	"syscall"
	"time"
)

// processCPUTime returns the CPU time (user+system, all threads) this
// process has used, or 0 if unknown. Benchmarks report it per operation
// because wall-clock time on a shared machine includes waiting for a core.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

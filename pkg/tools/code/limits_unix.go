//go:build unix

package code

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// applyLimits puts the request's limits on this process with setrlimit(2),
// lowering soft and hard limits together so the program cannot raise them
// again:
//
//   - RLIMIT_CPU: soft CPUSeconds (the kernel sends SIGXCPU, which cancels
//     the interpreter), hard CPUSeconds+1 (the kernel sends SIGKILL, for a
//     program stuck inside one long builtin);
//   - RLIMIT_NOFILE: MaxOpenFiles;
//   - RLIMIT_FSIZE 0 and RLIMIT_CORE 0: no file grows, no core dump;
//   - on Linux, RLIMIT_DATA (limits_linux.go).
//
// The returned channel is closed on the first SIGXCPU.
func applyLimits(req request) ([]string, <-chan struct{}, error) {
	cpu := uint64(req.CPUSeconds)
	if err := lower(unix.RLIMIT_CPU, cpu, cpu+1); err != nil {
		return nil, nil, fmt.Errorf("RLIMIT_CPU: %w", err)
	}
	files := uint64(req.MaxOpenFiles)
	if err := lower(unix.RLIMIT_NOFILE, files, files); err != nil {
		return nil, nil, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	if err := lower(unix.RLIMIT_FSIZE, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("RLIMIT_FSIZE: %w", err)
	}
	if err := lower(unix.RLIMIT_CORE, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("RLIMIT_CORE: %w", err)
	}
	applied := []string{
		fmt.Sprintf("RLIMIT_CPU=%ds", cpu),
		fmt.Sprintf("RLIMIT_NOFILE=%d", files),
		"RLIMIT_FSIZE=0",
		"RLIMIT_CORE=0",
	}
	more, err := platformLimits(req)
	if err != nil {
		return nil, nil, err
	}
	applied = append(applied, more...)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGXCPU)
	hit := make(chan struct{})
	go func() {
		<-sig
		close(hit)
	}()
	return applied, hit, nil
}

// lower sets the limit to (soft, hard), never above the current hard limit.
func lower(resource int, soft, hard uint64) error {
	var cur unix.Rlimit
	if err := unix.Getrlimit(resource, &cur); err != nil {
		return err
	}
	hard = min(hard, asUint64(cur.Max))
	soft = min(soft, hard)
	setRlim(&cur.Cur, soft)
	setRlim(&cur.Max, hard)
	return unix.Setrlimit(resource, &cur)
}

// Rlimit fields are uint64 on most systems and int64 on some BSDs.
func asUint64[T int64 | uint64](v T) uint64 { return uint64(v) }

func setRlim[T int64 | uint64](p *T, v uint64) { *p = T(v) }

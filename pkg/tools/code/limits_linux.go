package code

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dataHeadroom is added to the data segment the runtime already has when
// RLIMIT_DATA is set: room for the GC's working space and runtime
// metadata on top of MaxMemoryMB.
const dataHeadroom = 64 << 20

// platformLimits sets RLIMIT_DATA. Since Linux 4.7 it counts every
// private writable mapping, which is where the Go heap lives; address
// space reserved PROT_NONE (the runtime reserves gigabytes of it, which is
// why RLIMIT_AS cannot be used) does not count. The limit is what the
// process has mapped now plus MaxMemoryMB plus headroom: gradual growth
// is stopped earlier by the parent's RSS watchdog, while a single huge
// allocation fails here at once with ENOMEM, which the runtime reports as
// "fatal error: out of memory".
func platformLimits(req request) ([]string, error) {
	data, err := statusKB("/proc/self/status", "VmData:")
	if err != nil {
		return nil, fmt.Errorf("reading VmData: %w", err)
	}
	limit := uint64(data)<<10 + uint64(req.MaxMemoryMB)<<20 + dataHeadroom
	if err := lower(unix.RLIMIT_DATA, limit, limit); err != nil {
		return nil, fmt.Errorf("RLIMIT_DATA: %w", err)
	}
	return []string{fmt.Sprintf("RLIMIT_DATA=%dMiB", limit>>20)}, nil
}

// statusKB reads one "Key: N kB" line of a /proc status file.
func statusKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s has no %s line", path, key)
}

// Package benchutil holds the small helpers the serve benchmarks share:
// percentiles, /proc readings and the environment of a benchmark run.
package benchutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Summary is the distribution of a set of durations.
type Summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean                    time.Duration
}

// Summarize sorts a copy of ds and returns its percentiles (nearest rank).
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{N: len(s), Min: s[0], P50: Pct(s, 50), P90: Pct(s, 90), P99: Pct(s, 99), Max: s[len(s)-1], Mean: sum / time.Duration(len(s))}
}

// Pct is the p-th percentile of sorted s by nearest rank.
func Pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// Ms formats d in milliseconds with three decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// Us formats d in microseconds with one decimal.
func Us(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)) }

// RSSKB reads VmRSS (and VmHWM, the peak) of pid from /proc, in KiB.
func RSSKB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// ClockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux this runs on).
const ClockTick = 100

// CPUTime is the user+system CPU time pid has used so far, from
// /proc/PID/stat (10 ms resolution).
func CPUTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(ticks(f, 11)+ticks(f, 12)) * time.Second / ClockTick, nil
}

// TreeCPUTime is the CPU time pid and its children have used so far: its
// own, that of the children it has waited for (cutime, cstime), and that
// of its live children. For a PostgreSQL postmaster this is the whole
// server: backends come and go as its children.
func TreeCPUTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	t := ticks(f, 11) + ticks(f, 12) + ticks(f, 13) + ticks(f, 14)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue
		}
		for _, c := range strings.Fields(string(b)) {
			child, _ := strconv.Atoi(c)
			// A child that exited meanwhile is in cutime once reaped.
			if cf, err := statFields(child); err == nil {
				t += ticks(cf, 11) + ticks(cf, 12)
			}
		}
	}
	return time.Duration(t) * time.Second / ClockTick, nil
}

// statFields are the fields of /proc/PID/stat after the command name:
// state(0) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
// utime(11) stime(12) cutime(13) cstime(14) ...
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return f, nil
}

func ticks(f []string, i int) int64 {
	n, _ := strconv.ParseInt(f[i], 10, 64)
	return n
}

// LoadAvg is the first three fields of /proc/loadavg.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Env is the environment of an agentmesh run whose home is home: HOME and
// XDG_CONFIG_HOME point inside it (the audit witness is written under
// XDG_CONFIG_HOME), and the variables that would redirect the state or
// configuration are cleared.
func Env(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "XDG_CONFIG_HOME", "AGENTMESH_STATE_DIR", "AGENTMESH_CONFIG", "AGENTMESH_DATABASE_URL":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
}

// HomeFor is the home directory the benchmarks use for a configuration:
// "home" beside the file.
func HomeFor(config string) string { return filepath.Join(filepath.Dir(config), "home") }

// SystemCPU reads the first line of /proc/stat: the busy and total CPU time
// of the whole machine so far (all CPUs together), in clock ticks.
func SystemCPU() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: unexpected format")
	}
	// user nice system idle iowait irq softirq steal (guest is in user).
	for i, s := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseInt(s, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

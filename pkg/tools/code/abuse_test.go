//go:build linux

package code

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireHealthy runs a normal program: the parent, and the sandbox, still
// work after an abuse case.
func requireHealthy(t *testing.T, tool *Tool) {
	t.Helper()
	r, err := run(t, tool, "print(1+1)")
	if err != nil || r.Output != "2\n" {
		t.Fatalf("print(1+1) after an abuse case: %+v, %v", r, err)
	}
}

// TestSandboxAbuse: each abuse is stopped by the right limit, well within
// the wall-clock timeout, and leaves the parent unaffected.
func TestSandboxAbuse(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &before); err != nil {
		t.Fatal(err)
	}
	tool := newTool(t, testOptions(t))
	cpuOpts := testOptions(t)
	cpuOpts.MaxSteps, cpuOpts.CPUSeconds = 1<<62, 1
	cpuTool := newTool(t, cpuOpts)
	timeoutOpts := testOptions(t)
	timeoutOpts.MaxSteps, timeoutOpts.CPUSeconds, timeoutOpts.Timeout = 1<<62, 30, 500*time.Millisecond
	timeoutTool := newTool(t, timeoutOpts)

	tests := []struct {
		name  string
		tool  *Tool
		code  string
		check string
		// within bounds the run's wall-clock time.
		within time.Duration
	}{
		{"infinite while loop", tool, "while True:\n  pass", "sandbox-steps", 5 * time.Second},
		{"infinite for loop", tool, "for x in range(1 << 62):\n  pass", "sandbox-steps", 5 * time.Second},
		{"nested loops", tool, "for x in range(1 << 30):\n  for y in range(1 << 30):\n    pass", "sandbox-steps", 5 * time.Second},
		{"list(range(1 << 62))", tool, "x = list(range(1 << 62))", "sandbox-memory", 5 * time.Second},
		{"sorted(range(1 << 62))", tool, "x = sorted(range(1 << 62))", "sandbox-memory", 5 * time.Second},
		{"memory growing in small steps", tool, "s = []\nfor i in range(1 << 62):\n  s.append('x' * 1000)", "sandbox-memory", 5 * time.Second},
		{"dict growing in small steps", tool, "d = {}\nfor i in range(1 << 62):\n  d[i] = str(i) * 100", "sandbox-memory", 5 * time.Second},
		{"string doubling", tool, "s = 'x'\nfor i in range(40):\n  s = s + s", "sandbox-memory", 5 * time.Second},
		{"one 512 MiB string", tool, "s = 'x' * (1 << 29)", "sandbox-memory", 5 * time.Second},
		{"huge string 1 << 40", tool, `s = "x" * (1 << 40)`, "sandbox-memory", 5 * time.Second},
		{"huge list 1 << 40", tool, "s = [0] * (1 << 40)", "sandbox-memory", 5 * time.Second},
		{"output flood", tool, "for i in range(1 << 62):\n  print('flood')", "sandbox-output", 5 * time.Second},
		{"one huge print", tool, "print('x' * 100000)", "sandbox-output", 5 * time.Second},
		{"huge result", tool, "result = 'x' * 100000", "sandbox-output", 5 * time.Second},
		{"cpu burn", cpuTool, "while True:\n  pass", "sandbox-cpu", 5 * time.Second},
		{"wall clock", timeoutTool, "while True:\n  pass", "sandbox-timeout", 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			r, err := run(t, tt.tool, tt.code)
			if got := check(err); got != tt.check {
				t.Fatalf("check %q, want %q (result %+v)", got, tt.check, r)
			}
			if d := time.Since(start); d > tt.within {
				t.Errorf("stopped after %s, want within %s", d, tt.within)
			}
			requireHealthy(t, tool)
		})
	}
	var after unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CPU, &after); err != nil || after != before {
		t.Fatalf("the parent's RLIMIT_CPU changed from %+v to %+v", before, after)
	}
}

// TestDeepRecursionIsAnError: recursion is off, so deep recursion is a
// Starlark error (a tool result with isError), not a crash.
func TestDeepRecursionIsAnError(t *testing.T) {
	tool := newTool(t, testOptions(t))
	r, err := run(t, tool, "def f(n):\n  return f(n + 1)\nf(0)")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Error, "called recursively") {
		t.Fatalf("error %q", r.Error)
	}
	requireHealthy(t, tool)
}

func TestCancelKillsChild(t *testing.T) {
	opts := testOptions(t)
	opts.MaxSteps, opts.CPUSeconds = 1<<62, 30
	tool := newTool(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tool.Call(ctx, map[string]any{"code": "while True:\n  pass"})
	if got := check(err); !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "cancelled") {
		t.Fatalf("got %q, want a cancellation error", got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancellation took %s", d)
	}
}

func TestLimitsReported(t *testing.T) {
	tool := newTool(t, testOptions(t))
	r, err := run(t, tool, "pass")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"RLIMIT_CPU=2s", "RLIMIT_NOFILE=16", "RLIMIT_FSIZE=0", "RLIMIT_CORE=0", "RLIMIT_DATA="}
	joined := strings.Join(r.Limits, " ")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("limits %v lack %s", r.Limits, w)
		}
	}
}

// TestRlimitsInChild: the limits really hold in a process that applied
// them (a probe child; the test process itself must never apply them).
func TestRlimitsInChild(t *testing.T) {
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), limitsProbeEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || lines[1] != "<nil>" {
		t.Fatalf("probe output %q", out)
	}
	// 16 descriptors, three of them stdio (and maybe one or two the
	// runtime holds): the probe must fail before opening 16 more.
	n, err := strconv.Atoi(lines[2])
	if err != nil || n > 13 || n < 8 {
		t.Fatalf("opened %s files under RLIMIT_NOFILE=16", lines[2])
	}
}

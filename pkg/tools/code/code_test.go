package code

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/agentmesh/agentmesh/pkg/scope"
)

func TestRunProgram(t *testing.T) {
	tool := newTool(t, testOptions(t))
	tests := []struct {
		name, code, output, result, err string
	}{
		{"print", "print(1+1)", "2\n", "null", ""},
		{"result dict", "result = {'a': [1, 2], 'b': None, 'c': 'é'}", "", `{"a":[1,2],"b":null,"c":"é"}`, ""},
		{"result not JSON-able", "def f():\n  pass\nresult = f", "", `"\u003cfunction f\u003e"`, ""},
		{"json module", "print(json.encode({'x': 1}))\nresult = json.decode('[1, 2]')", "{\"x\":1}\n", "[1,2]", ""},
		{"math module", "result = math.floor(2.7)", "", "2", ""},
		{"while allowed", "i = 0\nwhile i < 3:\n  i += 1\nresult = i", "", "3", ""},
		{"set allowed", "result = len(set([1, 1, 2]))", "", "2", ""},
		{"output before an error", "print('before')\nfail('boom')", "before\n", "null", "boom"},
		{"syntax error", "x = 1 +", "", "null", "want primary expression"},
		{"load unavailable", "load('x.star', 'y')", "", "null", "load() is not available"},
		{"no file access", "open('/etc/passwd')", "", "null", "undefined: open"},
		{"long error message", "fail('é' * 5000)", "", "null", "[truncated]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := run(t, tool, tt.code)
			if err != nil {
				t.Fatal(err)
			}
			if r.Output != tt.output || string(r.Result) != tt.result {
				t.Errorf("output %q result %s, want %q %s", r.Output, r.Result, tt.output, tt.result)
			}
			if !strings.Contains(r.Error, tt.err) || (tt.err == "") != (r.Error == "") {
				t.Errorf("error %q, want %q", r.Error, tt.err)
			}
			if r.Steps == 0 && tt.err == "" {
				t.Error("steps not reported")
			}
			if r.Landlock == "" || r.DurationMS <= 0 {
				t.Errorf("metadata missing: %+v", r)
			}
		})
	}
}

func TestResultText(t *testing.T) {
	tool := newTool(t, testOptions(t))
	res, err := tool.Call(context.Background(), map[string]any{"code": "print('hi')\nresult = [1]"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res.Content)
	if !strings.Contains(string(b), `hi\nresult = [1]\n`) {
		t.Fatalf("text content %s", b)
	}
	if res.IsError {
		t.Fatal("isError on success")
	}
}

// TestLandlock: where the kernel has Landlock, a restricted process cannot
// read a file it could read before.
func TestLandlock(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Landlock is Linux-only")
	}
	exe, _ := os.Executable()
	if _, err := os.ReadFile(exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), landlockProbeEnv+"="+exe)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	state, readErr, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if strings.HasPrefix(state, "unavailable") {
		t.Skipf("Landlock %s on this kernel", state)
	}
	if !strings.HasPrefix(state, "enforced (ABI ") {
		t.Fatalf("state %q", state)
	}
	if !strings.Contains(readErr, "permission denied") {
		t.Fatalf("read after Landlock: %q, want permission denied", readErr)
	}
	// And the sandbox reports the same state.
	r, err := run(t, newTool(t, testOptions(t)), "pass")
	if err != nil || r.Landlock != state {
		t.Fatalf("sandbox landlock %q, probe %q (%v)", r.Landlock, state, err)
	}
}

func TestArgumentsAndLanguage(t *testing.T) {
	tool := newTool(t, testOptions(t))
	tests := []struct {
		args  map[string]any
		check string
	}{
		{map[string]any{}, "arguments"},
		{map[string]any{"code": 1}, "arguments"},
		{map[string]any{"code": "pass", "language": 2}, "arguments"},
		{map[string]any{"code": "pass", "language": "Starlark"}, "arguments"},
		{map[string]any{"code": "pass", "language": ""}, "arguments"},
		{map[string]any{"code": "pass", "timeout": 1}, "arguments"},
		{map[string]any{"code": strings.Repeat("#", maxCodeBytes+1)}, "arguments"},
		{map[string]any{"code": "pass", "language": "python"}, "language"},
	}
	for _, tt := range tests {
		_, err := tool.Call(context.Background(), tt.args)
		if got := check(err); got != tt.check {
			t.Errorf("%v: check %q, want %q", tt.args, got, tt.check)
		}
	}
	acc, err := tool.Access(map[string]any{"code": "pass"})
	if err != nil || acc.Kind != scope.Code || acc.Target != "starlark" || acc.Action != scope.Execute {
		t.Fatalf("access %v %v", acc, err)
	}
	// A language that is not enabled is refused before any scope check.
	if _, err = tool.Access(map[string]any{"code": "pass", "language": "python"}); check(err) != "language" {
		t.Fatalf("access python: %v, want a language refusal", err)
	}
}

func TestNewChecksOptions(t *testing.T) {
	if _, err := New(Options{Languages: []string{"python"}}); err == nil {
		t.Error("python accepted")
	}
	if _, err := New(Options{MaxOpenFiles: 3}); err == nil {
		t.Error("MaxOpenFiles 3 accepted")
	}
	tool, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tool.opts.MaxMemoryMB != DefaultMaxMemoryMB || tool.opts.Args[0] != ChildCommand || tool.opts.Exe == "" {
		t.Fatalf("defaults %+v", tool.opts)
	}
	if d := tool.Definition(); d.Name != Name || d.InputSchema.Required[0] != "code" {
		t.Fatalf("definition %+v", d)
	}
}

func TestStartFailureIsAnError(t *testing.T) {
	opts := testOptions(t)
	opts.Exe = "/nonexistent/agentmesh"
	_, err := newTool(t, opts).Call(context.Background(), map[string]any{"code": "pass"})
	if got := check(err); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("got %q", got)
	}
}

func TestReadRequest(t *testing.T) {
	good := `{"v":1,"language":"starlark","code":"pass","max_steps":1,"max_output_bytes":1,"cpu_seconds":1,"max_open_files":8,"max_memory_mb":1}`
	if _, err := readRequest(strings.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		``, `{`, `[]`,
		strings.Replace(good, `"v":1`, `"v":2`, 1),
		strings.Replace(good, `"starlark"`, `"python"`, 1),
		strings.Replace(good, `"max_steps":1`, `"max_steps":0`, 1),
		strings.Replace(good, `"cpu_seconds":1`, `"cpu_seconds":-1`, 1),
		strings.Replace(good, `"max_memory_mb":1`, `"max_memory_mb":0`, 1),
		strings.Replace(good, `}`, `,"extra":1}`, 1),
	} {
		if _, err := readRequest(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestBoundedOutput(t *testing.T) {
	thread := new(starlark.Thread)
	out := &boundedOutput{max: 9}
	out.print(thread, "abc")
	out.print(thread, "déjà vu")
	out.print(thread, "never")
	// "abc\n" (4 bytes) + 5 bytes of "déjà vu" would split "à".
	if got := out.String(); got != "abc\ndéj" || !out.exceeded {
		t.Fatalf("output %q exceeded=%v", got, out.exceeded)
	}
	if _, err := starlark.ExecFile(thread, "x", "pass", nil); err == nil || !strings.Contains(err.Error(), "output limit") {
		t.Fatalf("thread not cancelled: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	tool := newTool(t, testOptions(t))
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			r, err := run(t, tool, "result = "+strconv.Itoa(i)+" * 2")
			if err == nil && string(r.Result) != strconv.Itoa(i*2) {
				err = fmt.Errorf("call %d: result %s", i, r.Result)
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestLanguageDescribed(t *testing.T) {
	tool, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	lang := tool.Definition().InputSchema.Properties["language"].(map[string]any)
	if d, _ := lang["description"].(string); !strings.Contains(d, "enabled: starlark") {
		t.Fatalf("language description %q", d)
	}
}

package code

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// RunChild is the sandbox child: the body of the hidden subcommand
// (ChildCommand) that code_execute re-executes the agentmesh binary with.
// It reads one request from stdin, puts the OS limits on its own process
// (rlimits, Landlock), runs the Starlark program and writes one response
// to stdout. The exit code is 0 when a response was written.
//
// It changes process-wide state that cannot be undone (rlimits, Landlock,
// the GC memory limit, a locked OS thread), so it must only ever run in a
// process started for it, never in a serving agentmesh.
func RunChild(stdin io.Reader, stdout io.Writer) int {
	// Landlock may only be able to restrict this thread (in a cgo binary);
	// the interpreter then runs on it.
	runtime.LockOSThread()
	req, err := readRequest(stdin)
	if err != nil {
		return writeResponse(stdout, response{Kind: kindInternal, Error: err.Error()})
	}
	limits, cpu, err := applyLimits(req)
	if err != nil {
		// Fail closed: no code runs without its limits.
		return writeResponse(stdout, response{Kind: kindInternal, Error: "setting limits: " + err.Error()})
	}
	// A soft bound for the GC below the RSS the parent kills at, so a
	// program with a small live set but much garbage is not killed.
	debug.SetMemoryLimit(int64(req.MaxMemoryMB) << 20 * 3 / 4)
	landlock := restrictFilesystem()
	resp := runStarlark(req, cpu)
	resp.Landlock, resp.Limits = landlock, limits
	return writeResponse(stdout, resp)
}

func writeResponse(w io.Writer, resp response) int {
	resp.Version = protocolVersion
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		return 2
	}
	if resp.Kind == kindInternal {
		return 1
	}
	return 0
}

// fileOptions: while loops on (the step budget ends infinite ones),
// recursion off (deep recursion is an error), top-level for/if on.
var fileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
	Recursion:       false,
}

// predeclared is what a program sees besides the universe: the json and
// math modules. No load(), no I/O, no time.
var predeclared = starlark.StringDict{
	"json": starjson.Module,
	"math": math.Module,
}

// runStarlark executes the program under the step budget and output cap.
func runStarlark(req request, cpu <-chan struct{}) (resp response) {
	out := &boundedOutput{max: req.MaxOutputBytes}
	var stepsHit, cpuHit atomic.Bool
	thread := &starlark.Thread{
		Name:  "code_execute",
		Print: out.print,
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load() is not available in code_execute")
		},
		OnMaxSteps: func(th *starlark.Thread) {
			stepsHit.Store(true)
			th.Cancel("step budget exhausted")
		},
	}
	thread.SetMaxExecutionSteps(req.MaxSteps)
	if cpu != nil {
		go func() {
			<-cpu
			cpuHit.Store(true)
			thread.Cancel("CPU time limit reached")
		}()
	}
	defer func() {
		if p := recover(); p != nil {
			resp = response{Kind: kindInternal, Error: fmt.Sprint("interpreter panic: ", p)}
			if allocationPanic(p) {
				resp.Kind = kindMemory
			}
			resp.Output, resp.Steps = out.String(), thread.ExecutionSteps()
		}
	}()
	globals, err := starlark.ExecFileOptions(fileOptions, thread, "code.star", req.Code, predeclared)
	resp.Steps = thread.ExecutionSteps()
	switch {
	case cpuHit.Load():
		resp.Kind = kindCPU
	case stepsHit.Load():
		resp.Kind = kindSteps
	case out.exceeded:
		resp.Kind = kindOutput
	case err != nil:
		resp.Kind, resp.Error = kindError, errorText(err)
		if msg, ok := allocationError(err); ok {
			resp.Kind, resp.Error = kindMemory, msg
		}
	default:
		resp.Kind = kindOK
		if v, ok := globals["result"]; ok {
			resp.Result, err = encodeResult(thread, v, req.MaxOutputBytes)
			if err != nil {
				resp.Kind, resp.Error = kindOutput, err.Error()
			}
		}
	}
	resp.Output = out.String()
	if int64(len(resp.Error)) > req.MaxOutputBytes {
		resp.Error = truncateUTF8(resp.Error, int(req.MaxOutputBytes)) + " [truncated]"
	}
	return resp
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// allocationError recognises the interpreter's own allocation ceiling
// ("x" * (1 << 40)): a memory refusal, not a bug in the program.
func allocationError(err error) (string, bool) {
	var ee *starlark.EvalError
	if !errors.As(err, &ee) {
		return "", false
	}
	return ee.Msg, strings.Contains(ee.Msg, "excessive repeat") ||
		strings.HasPrefix(ee.Msg, "repeat count") && strings.HasSuffix(ee.Msg, "too large")
}

// allocationPanic recognises runtime panics from impossible allocations
// (list(range(1 << 62)) asks make() for 2^62 elements).
func allocationPanic(p any) bool {
	s := fmt.Sprint(p)
	return strings.Contains(s, "makeslice") || strings.Contains(s, "growslice") ||
		strings.Contains(s, "makemap") || strings.Contains(s, "out of memory")
}

func errorText(err error) string {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		return ee.Backtrace()
	}
	return err.Error()
}

// encodeResult renders the global "result" as JSON with Starlark's own
// json.encode; values it cannot encode become their repr, as a string.
func encodeResult(thread *starlark.Thread, v starlark.Value, max int64) (json.RawMessage, error) {
	var text string
	enc, err := starlark.Call(thread, starjson.Module.Members["encode"], starlark.Tuple{v}, nil)
	if s, ok := enc.(starlark.String); err == nil && ok {
		text = string(s)
	} else {
		b, _ := json.Marshal(v.String())
		text = string(b)
	}
	if int64(len(text)) > max {
		return nil, fmt.Errorf("result is %d bytes of JSON, over the %d-byte output limit", len(text), max)
	}
	return json.RawMessage(text), nil
}

// boundedOutput collects print() output up to max bytes; the print that
// crosses the cap is cut at a UTF-8 boundary and cancels the thread.
type boundedOutput struct {
	b        strings.Builder
	max      int64
	exceeded bool
}

func (o *boundedOutput) print(thread *starlark.Thread, msg string) {
	if o.exceeded {
		return
	}
	room := o.max - int64(o.b.Len())
	if int64(len(msg))+1 <= room {
		o.b.WriteString(msg)
		o.b.WriteByte('\n')
		return
	}
	o.b.WriteString(truncateUTF8(msg, int(max(room, 0))))
	o.exceeded = true
	thread.Cancel("output limit reached")
}

func (o *boundedOutput) String() string { return o.b.String() }

// Package code is the code_execute tool: Starlark programs run in a child
// process that the OS bounds.
//
// Starlark has no I/O by construction and counts execution steps, but it
// cannot bound memory in-process, and a runaway builtin ("x" * (1 << 29),
// sorted() of a huge list) is one step. So every call re-executes the
// agentmesh binary through a hidden subcommand (ChildCommand, whose body
// is RunChild), and the limits are enforced around the interpreter:
//
//	steps    thread.SetMaxExecutionSteps(MaxSteps), in the child
//	output   print() into a buffer capped at MaxOutputBytes, in the child
//	CPU      RLIMIT_CPU: SIGXCPU at CPUSeconds cancels the interpreter,
//	         SIGKILL at CPUSeconds+1
//	files    RLIMIT_NOFILE = MaxOpenFiles, RLIMIT_FSIZE = 0
//	memory   the parent polls the child's peak RSS (/proc/PID/status VmHWM)
//	         every 10 ms and kills it above MaxMemoryMB; RLIMIT_DATA
//	         (mapped heap + MaxMemoryMB + 64 MiB) makes one huge allocation
//	         fail at once; debug.SetMemoryLimit (3/4 of MaxMemoryMB) keeps
//	         the GC ahead of both
//	time     the parent kills the child's process group after Timeout
//	files    Landlock, where the kernel has it: no filesystem access at all
//
// RLIMIT_AS is not used: the Go runtime (and Starlark's small-int table)
// reserve gigabytes of address space they never touch.
package code

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Name is the MCP tool name.
const Name = "code_execute"

// ChildCommand is the hidden subcommand that runs RunChild: the default
// Options.Args.
const ChildCommand = "__sandbox"

// Defaults for zero Options fields (the embedded configuration's values).
const (
	DefaultMaxMemoryMB    = 256
	DefaultCPUSeconds     = 5
	DefaultTimeout        = 10 * time.Second
	DefaultMaxSteps       = 10_000_000
	DefaultMaxOutputBytes = 64 << 10
	DefaultMaxOpenFiles   = 64
)

// Options configure the tool (config: tools.code).
type Options struct {
	// Languages enabled; only "starlark" exists. Empty means starlark.
	Languages      []string
	MaxMemoryMB    int
	CPUSeconds     int
	Timeout        time.Duration
	MaxSteps       uint64
	MaxOutputBytes int64
	MaxOpenFiles   int
	// Exe is the binary to re-execute; empty means os.Executable().
	Exe string
	// Args are its arguments, naming the hidden subcommand; nil means
	// []string{ChildCommand}.
	Args []string
	// Env is added to the child's otherwise minimal environment (tests use
	// it to route the test binary to RunChild).
	Env []string
}

// Tool is code_execute.
type Tool struct {
	opts Options
}

var _ tools.Tool = (*Tool)(nil)

// supported lists the languages this package can run.
var supported = []string{"starlark"}

// New applies defaults and checks the options.
func New(opts Options) (*Tool, error) {
	if len(opts.Languages) == 0 {
		opts.Languages = supported
	}
	for _, l := range opts.Languages {
		if !slices.Contains(supported, l) {
			return nil, fmt.Errorf("code_execute: language %q is not supported (supported: %s)", l, strings.Join(supported, ", "))
		}
	}
	setDefault(&opts.MaxMemoryMB, DefaultMaxMemoryMB)
	setDefault(&opts.CPUSeconds, DefaultCPUSeconds)
	setDefault(&opts.Timeout, DefaultTimeout)
	setDefault(&opts.MaxSteps, DefaultMaxSteps)
	setDefault(&opts.MaxOutputBytes, DefaultMaxOutputBytes)
	setDefault(&opts.MaxOpenFiles, DefaultMaxOpenFiles)
	if opts.MaxOpenFiles < 8 {
		return nil, fmt.Errorf("code_execute: max_open_files %d is too low for the Go runtime (at least 8)", opts.MaxOpenFiles)
	}
	if opts.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("code_execute: finding the agentmesh binary to re-execute: %w", err)
		}
		opts.Exe = exe
	}
	if opts.Args == nil {
		opts.Args = []string{ChildCommand}
	}
	return &Tool{opts: opts}, nil
}

func setDefault[T int | int64 | uint64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Definition is the MCP tool definition.
func (t *Tool) Definition() mcp.Tool {
	return mcp.NewTool(Name,
		mcp.WithDescription("Run a Starlark program (Python-like; no imports, files or network) in a sandbox. "+
			"The program's print() output is returned, and the value of a global named `result`, as JSON. "+
			fmt.Sprintf("Limits: %d steps, %d MB memory, %d s CPU, %s wall clock, %d bytes of output. ",
				t.opts.MaxSteps, t.opts.MaxMemoryMB, t.opts.CPUSeconds, t.opts.Timeout, t.opts.MaxOutputBytes)+
			"while loops are allowed; recursion is not."),
		mcp.WithString("code", mcp.Required(), mcp.Description("The Starlark program.")),
		mcp.WithString("language", mcp.DefaultString("starlark"), mcp.Enum(t.opts.Languages...),
			mcp.Description("The program's language; enabled: "+strings.Join(t.opts.Languages, ", ")+" (Python itself is not available).")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// call is a validated code_execute call.
type call struct {
	language string
	code     string
}

func parseArgs(args map[string]any) (call, error) {
	for k := range args {
		if k != "code" && k != "language" {
			return call{}, tools.Refuse("arguments", "unknown argument %q (want code, language)", k)
		}
	}
	code, err := tools.StringArg(args, "code")
	if err != nil {
		return call{}, err
	}
	if len(code) > maxCodeBytes {
		return call{}, tools.Refuse("arguments", "code is longer than %d bytes", maxCodeBytes)
	}
	lang, err := tools.OptionalString(args, "language", "starlark")
	if err != nil {
		return call{}, err
	}
	if lang == "" || len(lang) > 32 || strings.Trim(lang, "abcdefghijklmnopqrstuvwxyz0123456789_+-") != "" {
		return call{}, tools.Refuse("arguments", "language %q is not a language name (lower-case letters, digits, _+-)", lang)
	}
	return call{language: lang, code: code}, nil
}

// Access validates the arguments and that the language is enabled; the
// resource is the language.
// AccessKind is the kind and action of every call (tools.Kinded).
func (t *Tool) AccessKind() tools.Access {
	return tools.Access{Kind: scope.Code, Action: scope.Execute}
}

func (t *Tool) Access(args map[string]any) (tools.Access, error) {
	c, err := t.parse(args)
	if err != nil {
		return tools.Access{}, err
	}
	return tools.Access{Kind: scope.Code, Target: c.language, Action: scope.Execute}, nil
}

func (t *Tool) parse(args map[string]any) (call, error) {
	c, err := parseArgs(args)
	if err != nil {
		return call{}, err
	}
	if !slices.Contains(t.opts.Languages, c.language) {
		return call{}, tools.Refuse("language", "language %q is not enabled for code_execute (enabled: %s)", c.language, strings.Join(t.opts.Languages, ", "))
	}
	return c, nil
}

// Result is the structured content of a code_execute result.
type Result struct {
	Output string `json:"output"`
	// Result is the global "result" as JSON, or null.
	Result     json.RawMessage `json:"result"`
	Error      string          `json:"error,omitempty"`
	Steps      uint64          `json:"steps"`
	DurationMS int64           `json:"duration_ms"`
	CPUMS      int64           `json:"cpu_ms"`
	MaxRSSKB   int64           `json:"max_rss_kb,omitempty"`
	Landlock   string          `json:"landlock"`
	Limits     []string        `json:"limits,omitempty"`
}

// Call runs the program in a child. Refusals: "arguments", "language",
// "sandbox-steps", "sandbox-memory", "sandbox-cpu", "sandbox-timeout",
// "sandbox-output". A Starlark syntax or runtime error is a result with
// isError set (the program failed, not the tool); a sandbox that cannot
// start or answer is an error.
func (t *Tool) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	c, err := t.parse(args)
	if err != nil {
		return nil, err
	}
	o := t.run(ctx, request{
		Version:        protocolVersion,
		Language:       c.language,
		Code:           c.code,
		MaxSteps:       t.opts.MaxSteps,
		MaxOutputBytes: t.opts.MaxOutputBytes,
		CPUSeconds:     t.opts.CPUSeconds,
		MaxOpenFiles:   t.opts.MaxOpenFiles,
		MaxMemoryMB:    t.opts.MaxMemoryMB,
	})
	if err := t.refusal(ctx, o); err != nil {
		return nil, err
	}
	return t.result(o), nil
}

// refusal classifies an outcome: nil when the child answered with a
// result or a program error.
func (t *Tool) refusal(ctx context.Context, o outcome) error {
	if o.startError != nil {
		return fmt.Errorf("code_execute: starting the sandbox (%s): %w", t.opts.Exe, o.startError)
	}
	switch o.killedFor {
	case killedMemory:
		return tools.Refuse("sandbox-memory", "the program used more than %d MB of memory and was stopped", t.opts.MaxMemoryMB)
	case killedTimeout:
		return tools.Refuse("sandbox-timeout", "the program ran longer than %s and was stopped", t.opts.Timeout)
	case killedContext:
		return fmt.Errorf("code_execute: cancelled: %w", context.Cause(ctx))
	}
	if o.overflow {
		return tools.Refuse("sandbox-output", "the program's output exceeded %d bytes", t.opts.MaxOutputBytes)
	}
	if o.respErr == nil {
		switch o.resp.Kind {
		case kindOK, kindError:
			return nil
		case kindSteps:
			return tools.Refuse("sandbox-steps", "the program exceeded its budget of %d execution steps", t.opts.MaxSteps)
		case kindOutput:
			return tools.Refuse("sandbox-output", "the program's output or result exceeded %d bytes", t.opts.MaxOutputBytes)
		case kindCPU:
			return tools.Refuse("sandbox-cpu", "the program used more than %d s of CPU time", t.opts.CPUSeconds)
		case kindMemory:
			return tools.Refuse("sandbox-memory", "the program tried to allocate more memory than allowed (%s)", firstLine(o.resp.Error))
		default:
			return fmt.Errorf("code_execute: the sandbox failed: %s", o.resp.Error)
		}
	}
	// No response: the child died.
	if runtimeOOM(o.stderr) {
		return tools.Refuse("sandbox-memory", "the program ran out of its %d MB of memory", t.opts.MaxMemoryMB)
	}
	if !o.state.Exited() && o.cpuTime() >= time.Duration(t.opts.CPUSeconds)*time.Second*9/10 {
		// Killed by a signal with the CPU budget spent: RLIMIT_CPU's hard
		// limit (SIGKILL) or an unhandled SIGXCPU.
		return tools.Refuse("sandbox-cpu", "the program used more than %d s of CPU time", t.opts.CPUSeconds)
	}
	return fmt.Errorf("code_execute: the sandbox died without answering: %s: %s", o, lastLines(o.stderr, 5))
}

// result builds the tool result for kinds ok and error.
func (t *Tool) result(o outcome) *mcp.CallToolResult {
	r := Result{
		Output:     o.resp.Output,
		Result:     o.resp.Result,
		Steps:      o.resp.Steps,
		DurationMS: o.duration.Milliseconds(),
		CPUMS:      o.cpuTime().Milliseconds(),
		MaxRSSKB:   maxRSSKB(o.state),
		Landlock:   o.resp.Landlock,
		Limits:     o.resp.Limits,
	}
	if r.Result == nil {
		r.Result = json.RawMessage("null")
	}
	var text strings.Builder
	text.WriteString(o.resp.Output)
	if o.resp.Result != nil {
		fmt.Fprintf(&text, "result = %s\n", o.resp.Result)
	}
	if o.resp.Kind == kindError {
		r.Error = o.resp.Error
		fmt.Fprintf(&text, "error: %s\n", o.resp.Error)
	}
	res := mcp.NewToolResultStructured(r, text.String())
	res.IsError = o.resp.Kind == kindError
	return res
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "no output on stderr"
	}
	return strings.Join(lines, " | ")
}

// Package demo is `agentmesh demo`: a scripted session against a real
// `agentmesh serve` subprocess that walks through the seed's "Try asking
// Claude" list and shows each governance decision, the audit entries and
// the trust score, then verifies the audit log. Every step has an expected
// result; Run reports the ones that differ.
package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Options configure a demo run.
type Options struct {
	// Exe is the agentmesh binary to run `serve` and `audit verify` with.
	Exe string
	// Out receives the narration.
	Out io.Writer
	// Dir is a scratch directory (state, config, witness); it should be
	// empty and is left in place.
	Dir string
	// Burst is how many api_call requests the rate-limit step makes beyond
	// none; default 101 against the seed's 100/hour.
	Burst int
}

// Step is one scripted call and its expected result.
type Step struct {
	Title  string
	Tool   string
	Args   map[string]any
	Expect string // allowed | blocked | redacted | error
}

// Outcome is what happened in one step.
type Outcome struct {
	Step
	Got    string
	Detail string
}

// Report is the demo's result.
type Report struct {
	Outcomes []Outcome
	// Mismatches counts steps whose result differed from the expectation.
	Mismatches int
	Verified   bool
}

// Run performs the demo.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Burst <= 0 {
		opts.Burst = 101
	}
	weather, stop, err := startWeatherAPI()
	if err != nil {
		return nil, err
	}
	defer stop()
	cfgPath, err := writeConfig(opts.Dir, weather)
	if err != nil {
		return nil, err
	}
	env := demoEnv(opts.Dir)
	fmt.Fprintf(opts.Out, "agentmesh demo: starting `agentmesh serve` (state in %s)\n", filepath.Join(opts.Dir, ".agentmesh"))
	fmt.Fprintf(opts.Out, "stand-in weather API on %s (no internet here)\n\n", weather)

	console := newConsole()
	c, err := client.NewStdioMCPClientWithOptions(opts.Exe, env, []string{"serve", "--config", cfgPath},
		transport.WithCommandStderrWriter(console))
	if err != nil {
		return nil, fmt.Errorf("starting serve: %w", err)
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "agentmesh-demo", Version: "1"}
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.Initialize(ictx, init); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	rep := &Report{}
	console.drain(5 * time.Second) // start-up lines
	for _, s := range Script(weather) {
		o := call(ctx, c, s)
		rep.add(opts.Out, o)
		if line := console.next(2 * time.Second); line != "" {
			fmt.Fprintf(opts.Out, "    serve: %s\n", line)
		}
	}
	rep.burst(ctx, opts.Out, c, weather, opts.Burst)
	for _, line := range lastN(console.drain(2*time.Second), 2) {
		fmt.Fprintf(opts.Out, "    serve: %s\n", line)
	}
	c.Close()

	fmt.Fprintf(opts.Out, "\n$ agentmesh audit --limit 5\n")
	runCLI(opts, env, cfgPath, "audit", "--limit", "5")
	fmt.Fprintf(opts.Out, "\n$ agentmesh audit verify\n")
	rep.Verified = runCLI(opts, env, cfgPath, "audit", "verify") == nil
	fmt.Fprintf(opts.Out, "\n$ agentmesh trust show\n")
	runCLI(opts, env, cfgPath, "trust", "show")
	if !rep.Verified {
		rep.Mismatches++
	}
	return rep, nil
}

// Script is the seed's "Try asking Claude" list as tool calls.
func Script(weather string) []Step {
	return []Step{
		{"Can you read the file /data/reports/q1.csv?", "filesystem_read", map[string]any{"path": "/data/reports/q1.csv"}, "allowed"},
		{"Can you read the file /data/users.json? (its e-mail addresses are personal data)", "filesystem_read", map[string]any{"path": "/data/users.json"}, "redacted"},
		{"Can you read the file /etc/hosts?", "filesystem_read", map[string]any{"path": "/etc/hosts"}, "blocked"},
		{"A path-traversal attempt: /data/../etc/passwd", "filesystem_read", map[string]any{"path": "/data/../etc/passwd"}, "blocked"},
		{"Can you query the database for user records?", "database_query", map[string]any{"query": "SELECT id, name, role FROM users ORDER BY id"}, "allowed"},
		{"A dangerous query: DROP TABLE users", "database_query", map[string]any{"query": "DROP TABLE users"}, "blocked"},
		{"Can you call the weather API?", "api_call", map[string]any{"url": weather + "/v1/forecast?city=Paris"}, "allowed"},
		{"An API that is not allowed", "api_call", map[string]any{"url": "https://api.example.com/v1/users"}, "blocked"},
		{"A file holding a secret", "filesystem_read", map[string]any{"path": "/data/notes/credentials.txt"}, "redacted"},
		{"Some sandboxed code", "code_execute", map[string]any{"code": "total = 0\nfor i in range(10):\n    total += i * i\nprint(total)"}, "allowed"},
	}
}

func call(ctx context.Context, c *client.Client, s Step) Outcome {
	req := mcp.CallToolRequest{}
	req.Params.Name = s.Tool
	req.Params.Arguments = s.Args
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := c.CallTool(cctx, req)
	o := Outcome{Step: s}
	if err != nil {
		o.Got, o.Detail = "error", err.Error()
		return o
	}
	text := resultText(res)
	switch {
	case res.IsError && strings.Contains(text, "agentmesh: call refused"):
		o.Got = "error"
	case res.IsError:
		o.Got = "blocked"
	case strings.Contains(text, "[REDACTED:") || strings.Contains(text, "[WITHHELD"):
		o.Got = "redacted"
	default:
		o.Got = "allowed"
	}
	o.Detail = text
	return o
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func (r *Report) add(w io.Writer, o Outcome) {
	r.Outcomes = append(r.Outcomes, o)
	mark := map[string]string{"allowed": "✓ allowed ", "blocked": "✗ blocked ", "redacted": "✓ redacted", "error": "! error   "}[o.Got]
	args, _ := json.Marshal(o.Args)
	fmt.Fprintf(w, "» %s\n  %s %s %s\n", o.Title, mark, o.Tool, args)
	fmt.Fprintf(w, "    %s\n", oneLine(o.Detail, 160))
	if o.Got != o.Expect {
		r.Mismatches++
		fmt.Fprintf(w, "  UNEXPECTED: wanted %s, got %s\n", o.Expect, o.Got)
	}
}

// burst calls the weather API past the seed's 100/hour limit: all but the
// last call go through, the last is blocked by the rate limit.
func (r *Report) burst(ctx context.Context, w io.Writer, c *client.Client, weather string, n int) {
	fmt.Fprintf(w, "» A burst of %d weather API calls (policy: 100/hour, one already made)\n", n)
	allowed, blocked := 0, 0
	var last Outcome
	for i := 0; i < n; i++ {
		last = call(ctx, c, Step{Tool: "api_call", Args: map[string]any{"url": weather + "/v1/forecast?city=Oslo"}})
		switch last.Got {
		case "allowed":
			allowed++
		case "blocked":
			blocked++
		}
	}
	want := 99 // one call was made in the script
	fmt.Fprintf(w, "  ✓ %d allowed, ✗ %d blocked: %s\n", allowed, blocked, oneLine(last.Detail, 120))
	o := Outcome{Step: Step{Title: "burst past the rate limit", Tool: "api_call", Expect: fmt.Sprintf("%d allowed", want)}, Got: fmt.Sprintf("%d allowed", allowed)}
	r.Outcomes = append(r.Outcomes, o)
	if allowed != want || blocked != n-want {
		r.Mismatches++
		fmt.Fprintf(w, "  UNEXPECTED: wanted %d allowed and %d blocked\n", want, n-want)
	}
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func runCLI(opts Options, env []string, cfg string, args ...string) error {
	cmd := exec.Command(opts.Exe, append([]string{"--config", cfg}, args...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = opts.Out, opts.Out
	return cmd.Run()
}

func demoEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTMESH_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+filepath.Join(dir, "home"), "XDG_CONFIG_HOME="+filepath.Join(dir, "home", ".config"), "NO_COLOR=1")
}

// startWeatherAPI serves a stand-in weather API on loopback.
func startWeatherAPI() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/forecast", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"city":%q,"forecast":"sunny","temperature_c":21}`, r.URL.Query().Get("city"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func writeConfig(dir, weather string) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`# agentmesh demo configuration (written by agentmesh demo)
agent:
  name: mcp-tool-server
  sponsor: devops@company.com
state_dir: .agentmesh
policies:
  paths: []
scopes:
  - resources: ["filesystem:/data/*"]
    actions: [read, list]
    ttl_minutes: 15
  - resources: ["database:users"]
    actions: [query]
    ttl_minutes: 15
  - resources: ["api:%[1]s/*"]
    actions: [call]
    ttl_minutes: 15
  - resources: ["code:starlark"]
    actions: [execute]
    ttl_minutes: 15
tools:
  api:
    endpoints:
      - url: %[1]s/*
        methods: [GET]
        allow_private: true   # the stand-in API runs on loopback
`, weather)
	p := filepath.Join(dir, "agentmesh.yaml")
	return p, os.WriteFile(p, []byte(cfg), 0o600)
}

// console collects the lines `serve` writes to stderr (its console view:
// one line per governed call with the audit sequence number and trust
// score), so the demo can show each next to the call that caused it.
type console struct {
	w     *io.PipeWriter
	lines chan string
}

func newConsole() *console {
	r, w := io.Pipe()
	c := &console{w: w, lines: make(chan string, 4096)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // never block serve on a full buffer
			}
		}
	}()
	return c
}

func (c *console) Write(p []byte) (int, error) { return c.w.Write(p) }

// next returns the next decision line ("✓ …", "✗ …"), waiting up to d.
func (c *console) next(d time.Duration) string {
	deadline := time.After(d)
	for {
		select {
		case l := <-c.lines:
			if isDecision(l) {
				return l
			}
		case <-deadline:
			return ""
		}
	}
}

// drain returns the decision lines that arrive until none came for a
// moment (or d passed).
func (c *console) drain(d time.Duration) []string {
	var out []string
	deadline := time.After(d)
	for {
		select {
		case l := <-c.lines:
			if isDecision(l) {
				out = append(out, l)
			}
		case <-time.After(300 * time.Millisecond):
			return out
		case <-deadline:
			return out
		}
	}
}

func isDecision(l string) bool {
	for _, p := range []string{"✓", "✗", "!", "~"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func lastN(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Command overhead measures what governance adds to one tool call: the same
// mcp-go stdio client calls filesystem_read on the same file through
// `agentmesh serve` (one or more configurations, e.g. durable audit with
// synchronous=full and with synchronous=normal) and through plainserver, the
// ungoverned mcp-go server with the same tool.
//
// All servers run at once, each as a subprocess behind its own client
// (github.com/mark3labs/mcp-go/client, NewStdioMCPClientWithOptions). After
// a warm-up (which also loads agentmesh's secret detectors), the calls are
// timed in blocks of -n sequential calls, cycling through the servers in a
// rotating order so that drift in machine load spreads over all of them.
// Every result is checked: not an error, and exactly the file's content
// (not redacted).
//
//	go run ./scripts/bench/serve/overhead -agentmesh BIN -gov full=CFG [-gov normal=CFG2] \
//	    -plain PLAINBIN -data DIR -expect FILE [-n 200] [-blocks 20] [-warmup 300]
//
// HOME and XDG_CONFIG_HOME of each agentmesh are "home" beside its config.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/scripts/bench/serve/internal/benchutil"
)

type govFlag []string

func (g *govFlag) String() string     { return strings.Join(*g, ",") }
func (g *govFlag) Set(v string) error { *g = append(*g, v); return nil }

type options struct {
	agentmesh, plain, data, path, expect string
	protocol                             string
	gov                                  govFlag
	n, blocks, warmup                    int
}

// target is one server under test.
type target struct {
	label  string
	bin    string
	args   []string
	env    []string
	c      *client.Client
	cmd    *exec.Cmd
	stderr syncBuffer
	proto  string
	durs   []time.Duration
	cpu    time.Duration // server CPU time during the timed blocks
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func main() {
	var o options
	flag.StringVar(&o.agentmesh, "agentmesh", "", "agentmesh binary")
	flag.Var(&o.gov, "gov", "LABEL=CONFIG: an agentmesh serve configuration to measure (repeatable)")
	flag.StringVar(&o.plain, "plain", "", "plainserver binary (the ungoverned baseline)")
	flag.StringVar(&o.data, "data", "", "directory plainserver serves at /data (the one agentmesh mounts)")
	flag.StringVar(&o.path, "path", "/data/bench.txt", "virtual path to read")
	flag.StringVar(&o.expect, "expect", "", "host file whose content every call must return unchanged")
	flag.IntVar(&o.n, "n", 200, "sequential calls per block")
	flag.IntVar(&o.blocks, "blocks", 20, "blocks per server")
	flag.IntVar(&o.warmup, "warmup", 300, "untimed calls per server first")
	flag.StringVar(&o.protocol, "protocol", "", "pin the MCP protocol version (e.g. 2025-11-25); default: the client negotiates")
	flag.Parse()
	if o.agentmesh == "" || len(o.gov) == 0 || o.plain == "" || o.data == "" {
		fmt.Fprintln(os.Stderr, "usage: overhead -agentmesh BIN -gov LABEL=CFG [-gov ...] -plain BIN -data DIR [-expect FILE]")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "overhead:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var want []byte
	if o.expect != "" {
		var err error
		if want, err = os.ReadFile(o.expect); err != nil {
			return err
		}
	}
	plain := &target{label: "plain (ungoverned mcp-go)", bin: o.plain, args: []string{"-root", o.data}, env: os.Environ()}
	targets := []*target{plain}
	for _, g := range o.gov {
		label, cfg, ok := strings.Cut(g, "=")
		if !ok {
			return fmt.Errorf("-gov %q: want LABEL=CONFIG", g)
		}
		if err := os.MkdirAll(benchutil.HomeFor(cfg), 0o700); err != nil {
			return err
		}
		targets = append(targets, &target{label: "agentmesh " + label, bin: o.agentmesh,
			args: []string{"serve", "--config", cfg, "--quiet"}, env: benchutil.Env(benchutil.HomeFor(cfg))})
	}
	ctx := context.Background()
	for _, t := range targets {
		if err := t.start(ctx, o.protocol); err != nil {
			return fmt.Errorf("%s: %w", t.label, err)
		}
		defer t.c.Close()
	}
	fmt.Printf("overhead: %d servers, %d warm-up calls each, then %d blocks × %d sequential filesystem_read calls each (load average %s)\n",
		len(targets), o.warmup, o.blocks, o.n, benchutil.LoadAvg())
	for _, t := range targets {
		for range o.warmup {
			if _, err := t.call(ctx, o.path, want); err != nil {
				return fmt.Errorf("%s warm-up: %w", t.label, err)
			}
		}
	}
	for b := range o.blocks {
		for k := range targets {
			t := targets[(b+k)%len(targets)]
			cpu0, _ := benchutil.CPUTime(t.cmd.Process.Pid)
			for range o.n {
				d, err := t.call(ctx, o.path, want)
				if err != nil {
					return fmt.Errorf("%s: %w", t.label, err)
				}
				t.durs = append(t.durs, d)
			}
			cpu1, _ := benchutil.CPUTime(t.cmd.Process.Pid)
			t.cpu += cpu1 - cpu0
		}
	}
	fmt.Printf("%-28s %6s %9s %9s %9s %9s %9s %14s %9s\n", "server", "calls", "p50 ms", "p90 ms", "p99 ms", "mean ms", "max ms", "srv CPU/call", "VmRSS")
	base := benchutil.Summarize(plain.durs)
	for _, t := range targets {
		s := benchutil.Summarize(t.durs)
		rss, _, _ := benchutil.RSSKB(t.cmd.Process.Pid)
		fmt.Printf("%-28s %6d %9s %9s %9s %9s %9s %11s µs %6.1f MiB\n", t.label, s.N, benchutil.Ms(s.P50), benchutil.Ms(s.P90), benchutil.Ms(s.P99),
			benchutil.Ms(s.Mean), benchutil.Ms(s.Max), benchutil.Us(t.cpu/time.Duration(max(1, s.N))), float64(rss)/1024)
	}
	for _, t := range targets[1:] {
		s := benchutil.Summarize(t.durs)
		fmt.Printf("added by %s: p50 %+.3f ms, p90 %+.3f ms, p99 %+.3f ms (protocol %s; plain %s)\n", t.label,
			msDiff(s.P50, base.P50), msDiff(s.P90, base.P90), msDiff(s.P99, base.P99), t.proto, plain.proto)
	}
	fmt.Printf("load average after: %s\n", benchutil.LoadAvg())
	return nil
}

func msDiff(a, b time.Duration) float64 { return float64(a-b) / float64(time.Millisecond) }

func (t *target) start(ctx context.Context, protocol string) error {
	// The command function keeps the exec.Cmd, for the server's pid.
	cmdFunc := transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, command, args...)
		cmd.Env = t.env
		cmd.Stderr = &t.stderr
		t.cmd = cmd
		return cmd, nil
	})
	if protocol == "" {
		c, err := client.NewStdioMCPClientWithOptions(t.bin, nil, t.args, cmdFunc)
		if err != nil {
			return err
		}
		t.c = c
	} else {
		t.c = client.NewClient(transport.NewStdioWithOptions(t.bin, nil, t.args, cmdFunc), client.WithProtocolVersion(protocol))
		if err := t.c.Start(ctx); err != nil {
			return err
		}
	}
	c := t.c
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var req mcp.InitializeRequest
	req.Params.ClientInfo = mcp.Implementation{Name: "overhead-bench", Version: "1"}
	res, err := c.Initialize(ictx, req)
	if err != nil {
		return fmt.Errorf("initialize: %w (stderr: %s)", err, strings.TrimSpace(t.stderr.String()))
	}
	t.proto = res.ProtocolVersion
	return nil
}

func (t *target) call(ctx context.Context, path string, want []byte) (time.Duration, error) {
	var req mcp.CallToolRequest
	req.Params.Name = "filesystem_read"
	req.Params.Arguments = map[string]any{"path": path}
	t0 := time.Now()
	res, err := t.c.CallTool(ctx, req)
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%w (stderr: %s)", err, strings.TrimSpace(t.stderr.String()))
	}
	return d, checkResult(res, want)
}

func checkResult(res *mcp.CallToolResult, want []byte) error {
	var text string
	if len(res.Content) > 0 {
		if tc, ok := mcp.AsTextContent(res.Content[0]); ok {
			text = tc.Text
		}
	}
	if res.IsError {
		return fmt.Errorf("the call failed: %s", text)
	}
	if want != nil && text != string(want) {
		return errors.New("the result differs from the file (redacted or withheld?): " + trunc(text))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

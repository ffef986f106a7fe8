package mcpserver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/internal/latency"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// BenchmarkGovernedRead: filesystem_read of a benign 1 KiB file through
// the whole pipeline as serve runs it (trust, credential, guards, scope,
// policy, the tool, redaction, the audit append with its trust update),
// without the MCP transport: durable (synchronous=full, a commit per
// call), synchronous=normal, and batched (batch_window=5ms); and
// synchronous=normal again with Prometheus metrics on, and with metrics
// and traces (exported to a loopback OTLP receiver that discards them),
// for their per-call cost. Every result is checked.
func BenchmarkGovernedRead(b *testing.B) {
	content := strings.Repeat("benign line of text for the benchmark, nothing to see.\n", 19)[:1024]
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer sink.Close()
	for _, mode := range []struct {
		name            string
		sync            string
		window          time.Duration
		metrics, traces bool
	}{{"durable", "full", 0, false, false}, {"normal", "normal", 0, false, false}, {"batch_window=5ms", "full", 5 * time.Millisecond, false, false},
		{"normal+metrics", "normal", 0, true, false}, {"normal+metrics+traces", "normal", 0, true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			dir := b.TempDir()
			os.MkdirAll(filepath.Join(dir, "files"), 0o700)
			if err := os.WriteFile(filepath.Join(dir, "files", "bench.txt"), []byte(content), 0o600); err != nil {
				b.Fatal(err)
			}
			cfg := config.Default()
			cfg.Source.StateDir = filepath.Join(dir, "state")
			cfg.Agent = config.Agent{Name: "bench", Sponsor: "me@example.com"}
			cfg.Audit.Witness = false
			cfg.Audit.Synchronous = mode.sync
			cfg.Audit.BatchWindow = config.Duration(mode.window)
			cfg.Policies.Paths = nil
			cfg.Tools.Filesystem.Roots = []config.Root{{Path: filepath.Join(dir, "files"), Mount: "/data", Access: config.AccessRead}}
			if mode.traces {
				cfg.Telemetry.OTLPEndpoint = sink.URL
			}
			rt, err := Open(context.Background(), &cfg, Options{Metrics: mode.metrics})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			var read tools.Tool
			for _, t := range rt.Tools {
				if t.Definition().Name == "filesystem_read" {
					read = t
				}
			}
			args := map[string]any{"path": "/data/bench.txt"}
			call := func() {
				res, err := rt.Pipeline.Run(context.Background(), governance.Call{Tool: "filesystem_read", Args: args, Access: read.Access, Method: "tools/call"},
					func(ctx context.Context) (*mcp.CallToolResult, error) { return read.Call(ctx, args) })
				if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(mcp.TextContent).Text != content {
					b.Fatalf("read: %v %+v", err, res)
				}
			}
			for range 50 { // load the detectors, warm the caches
				call()
			}
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				call()
				took = append(took, time.Since(start))
			}
			latency.Report(b, took)
		})
	}
}

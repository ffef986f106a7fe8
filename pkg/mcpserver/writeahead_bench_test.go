package mcpserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/internal/latency"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// BenchmarkWriteAhead: filesystem_write through the whole pipeline, its
// intent logged before the write (what serve does) side by side with a
// single entry after it (the same call with Changes cleared: what serve
// did before write-ahead), durable and batched.
func BenchmarkWriteAhead(b *testing.B) {
	for _, mode := range []struct {
		name   string
		window time.Duration
	}{{"durable", 0}, {"batch_window=5ms", 5 * time.Millisecond}} {
		for _, ahead := range []bool{true, false} {
			name := mode.name + "/intent+outcome"
			if !ahead {
				name = mode.name + "/single-entry"
			}
			b.Run(name, func(b *testing.B) {
				dir := b.TempDir()
				os.MkdirAll(filepath.Join(dir, "files"), 0o700)
				cfg := config.Default()
				cfg.Source.StateDir = filepath.Join(dir, "state")
				cfg.Agent = config.Agent{Name: "bench", Sponsor: "me@example.com"}
				cfg.Audit.Witness = false
				cfg.Audit.BatchWindow = config.Duration(mode.window)
				cfg.Policies.Paths = nil
				cfg.Tools.Filesystem.Roots = []config.Root{{Path: filepath.Join(dir, "files"), Mount: "/data", Access: config.AccessReadWrite}}
				rt, err := Open(context.Background(), &cfg, Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer rt.Close()
				var write tools.Tool
				for _, t := range rt.Tools {
					if t.Definition().Name == "filesystem_write" {
						write = t
					}
				}
				access := write.Access
				if !ahead {
					access = func(args map[string]any) (tools.Access, error) {
						a, err := write.Access(args)
						a.Changes = false
						return a, err
					}
				}
				var took []time.Duration
				for i := 0; b.Loop(); i++ {
					args := map[string]any{"path": fmt.Sprintf("/data/f%d.txt", i%64), "content": "hello"}
					start := time.Now()
					res, err := rt.Pipeline.Run(context.Background(), governance.Call{Tool: "filesystem_write", Args: args, Access: access, Method: "tools/call"},
						func(ctx context.Context) (*mcp.CallToolResult, error) { return write.Call(ctx, args) })
					took = append(took, time.Since(start))
					if err != nil || res.IsError {
						b.Fatalf("write %d: %v %+v", i, err, res)
					}
				}
				latency.Report(b, took)
			})
		}
	}
}

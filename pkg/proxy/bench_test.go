package proxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/internal/latency"
)

func benchEcho(b *testing.B, c *client.Client, tool string) {
	ctx := context.Background()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	took := make([]time.Duration, 0, b.N)
	defer func() { latency.Report(b, took) }()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := fmt.Sprintf("hello %d", i)
		req.Params.Arguments = map[string]any{"message": msg}
		start := time.Now()
		res, err := c.CallTool(ctx, req)
		took = append(took, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if got := res.Content[0].(mcp.TextContent).Text; res.IsError || got != "Echo: "+msg {
			b.Fatalf("result %q (isError %v)", got, res.IsError)
		}
	}
}

// BenchmarkEchoDirect: an mcp-go client calls the stdio upstream itself.
func BenchmarkEchoDirect(b *testing.B) {
	u := stdioUpstream(b)
	c, err := client.NewStdioMCPClient(u.Command, []string{"PROXY_TEST_UPSTREAM=1"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-11-25"
	if _, err := c.Initialize(context.Background(), init); err != nil {
		b.Fatal(err)
	}
	benchEcho(b, c, "echo")
}

// BenchmarkWriteAheadProxied: a proxied call the configuration does not
// mark read-only has its intent logged before it is forwarded; side by
// side with the same tool listed in read_only_tools (one entry after the
// call), durable and batched.
func BenchmarkWriteAheadProxied(b *testing.B) {
	for _, mode := range []struct {
		name   string
		window time.Duration
	}{{"durable", 0}, {"batch_window=5ms", 5 * time.Millisecond}} {
		for _, readOnly := range []bool{false, true} {
			name := mode.name + "/intent+outcome"
			if readOnly {
				name = mode.name + "/single-entry"
			}
			b.Run(name, func(b *testing.B) {
				up := stdioUpstream(b)
				if readOnly {
					up.ReadOnlyTools = []string{"echo"}
				}
				rt := openRuntimeWith(b, up, "", func(c *config.Config) { c.Audit.BatchWindow = config.Duration(mode.window) })
				benchEcho(b, connect(b, rt), "up__echo")
			})
		}
	}
}

// BenchmarkEchoGoverned: the same call through the proxy and the whole
// pipeline (credential, scope, policy, redaction, durable audit append,
// trust), the client in-process: fsync per commit, no fsync, and the
// relaxed mode (results return once the entry is queued).
func BenchmarkEchoGoverned(b *testing.B) {
	for _, mode := range []struct {
		name   string
		sync   string
		window time.Duration
	}{{"synchronous=full", "full", 0}, {"synchronous=normal", "normal", 0}, {"batch_window=5ms", "full", 5 * time.Millisecond}} {
		b.Run(mode.name, func(b *testing.B) {
			rt := openRuntimeWith(b, stdioUpstream(b), "", func(c *config.Config) {
				c.Audit.Synchronous, c.Audit.BatchWindow = mode.sync, config.Duration(mode.window)
			})
			c := connect(b, rt)
			benchEcho(b, c, "up__echo")
		})
	}
}

package governance_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
)

// Governing your own mcp-go server: open agentmesh's runtime from a
// configuration (identity, credentials, policy, audit log, trust: the same
// pipeline `agentmesh serve` uses) and pass its server options to
// server.NewMCPServer. Every tool you add, now or later, goes through it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "governance-example")
	defer os.RemoveAll(dir)

	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(dir, "state") // keys, audit log, trust
	cfg.Agent = config.Agent{Name: "greeter", Sponsor: "me@example.com"}
	cfg.Scopes = []config.Scope{{Resources: []string{"mcp:greeter/*"}, Actions: []string{"call"}, TTLMinutes: 15}}
	cfg.Tools.Filesystem.Enabled, cfg.Tools.Database.Enabled, cfg.Tools.API.Enabled, cfg.Tools.Code.Enabled = false, false, false, false
	rt, err := mcpserver.Open(ctx, &cfg, mcpserver.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rt.Close()

	// Your server, governed: each call needs a credential scope
	// "mcp:greeter/<tool>", passes the policies, and is audited.
	srv := server.NewMCPServer("greeter", "1.0.0", rt.Pipeline.ServerOptions(func(tool string) (governance.Route, bool) {
		return governance.Route{Access: governance.CallAccess("greeter", tool)}, true
	})...)
	srv.AddTool(mcp.NewTool("greet", mcp.WithString("name", mcp.Required())), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("Hello, " + req.GetString("name", "world") + "!"), nil
	})

	// A client calls it (in-process here; stdio or HTTP in real use).
	c, _ := client.NewInProcessClient(srv)
	defer c.Close()
	c.Start(ctx)
	c.Initialize(ctx, mcp.InitializeRequest{})
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "greet", map[string]any{"name": "Ada"}
	res, _ := c.CallTool(ctx, req)
	fmt.Println(res.Content[0].(mcp.TextContent).Text)

	entries, _ := rt.Log.List(ctx, auditlog.Filter{Tool: "greet", AfterSeq: -1})
	e := entries[0].Entry
	fmt.Println("audit:", e.Action, e.Tool, e.Result, *e.TrustScore)
	// Output:
	// Hello, Ada!
	// audit: tool_invocation greet allowed 801
}

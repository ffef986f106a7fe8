package proxy_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// TestMain lets the test binary serve as a stdio upstream: with
// PROXY_TEST_UPSTREAM=1 it runs an echo server instead of the tests
// (=die: with a tool "die" that makes it exit).
func TestMain(m *testing.M) {
	if mode := os.Getenv("PROXY_TEST_UPSTREAM"); mode == "1" || mode == "die" {
		s := server.NewMCPServer("echo-upstream", "1.0.0", server.WithToolCapabilities(true))
		s.AddTool(mcp.NewTool("echo", mcp.WithString("message", mcp.Required())), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("Echo: " + req.GetString("message", "")), nil
		})
		if mode == "die" {
			s.AddTool(mcp.NewTool("die"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				os.Exit(3)
				return nil, nil
			})
		}
		if err := server.ServeStdio(s); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func stdioUpstream(b testing.TB) config.Upstream {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	return config.Upstream{Name: "up", Command: exe, Env: map[string]string{"PROXY_TEST_UPSTREAM": "1"}}
}

// TestStdioUpstreamFixture: the test binary as an upstream answers echo
// over stdio, and in "die" mode exits with status 3 when its die tool is
// called, as the benchmarks and the restart test rely on.
func TestStdioUpstreamFixture(t *testing.T) {
	up := stdioUpstream(t)
	c, err := client.NewStdioMCPClient(up.Command, []string{"PROXY_TEST_UPSTREAM=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "echo", map[string]any{"message": "hi"}
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(mcp.TextContent).Text != "Echo: hi" {
		t.Fatalf("echo: %+v, %v", res, err)
	}

	cmd := exec.CommandContext(ctx, up.Command)
	cmd.Env = append(os.Environ(), "PROXY_TEST_UPSTREAM=die")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"die"}}`,
	} {
		stdin.Write([]byte(line + "\n"))
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("die mode: %v, want exit status 3", err)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// fixtureUpstream is a small MCP server over stdio that the proxy scripts
// govern (testscript runs it as the command "fixture-upstream"). What it
// serves is read from files in its working directory at start, so a script
// changes it between two runs of serve:
//
//	echo-description   the description of tool echo (a rug pull edits it)
//	extra-tool         if present, a tool "extra" is listed too
//	env-tool           if present, a tool "env" is listed too: it returns
//	                   "NAME is VALUE" for the environment variable NAME and
//	                   writes the same line to stderr, as a careless server
//	                   echoes its own key
//	calls.log          each call is appended here ("echo hi", "crash")
//
// Tools: echo (returns "echo: MESSAGE"), secret (returns a credential for
// redaction), crash (exits the process in the middle of the call).
func fixtureUpstream() {
	desc := "Echoes the message back."
	if b, err := os.ReadFile("echo-description"); err == nil {
		desc = strings.TrimSpace(string(b))
	}
	logCall := func(s string) {
		if f, err := os.OpenFile("calls.log", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, s)
			f.Close()
		}
	}
	s := server.NewMCPServer("fixture-upstream", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription(desc), mcp.WithString("message", mcp.Required(), mcp.Description("what to echo"))),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("echo " + req.GetString("message", ""))
			return mcp.NewToolResultText("echo: " + req.GetString("message", "")), nil
		})
	s.AddTool(mcp.NewTool("secret", mcp.WithDescription("Returns the deployment configuration.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("secret")
			return mcp.NewToolResultText("region: eu-west-1\npassword: hunter2\n"), nil
		})
	s.AddTool(mcp.NewTool("crash", mcp.WithDescription("Crashes the server mid-call.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("crash")
			fmt.Fprintln(os.Stderr, "fixture: crashing on purpose")
			time.Sleep(50 * time.Millisecond)
			os.Exit(3)
			return nil, nil
		})
	s.AddTool(mcp.NewTool("hang", mcp.WithDescription("Never answers.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("hang")
			<-ctx.Done() // ends when agentmesh sends notifications/cancelled
			logCall("hang cancelled")
			return nil, ctx.Err()
		})
	s.AddTool(mcp.NewTool("malformed", mcp.WithDescription("Answers with a content block of no known type.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("malformed")
			return &mcp.CallToolResult{Content: []mcp.Content{hologram{}}}, nil
		})
	s.AddTool(mcp.NewTool("flood", mcp.WithDescription("Writes a 17 MB line to stdout instead of answering.")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("flood")
			os.Stdout.WriteString(`{"jsonrpc":"2.0","method":"x","params":"` + strings.Repeat("A", 17<<20) + "\"}\n")
			<-ctx.Done()
			return nil, ctx.Err()
		})
	s.AddTool(mcp.NewTool("slow", mcp.WithDescription("Works for ms milliseconds, reporting progress every 200 ms."), mcp.WithNumber("ms", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			logCall("slow")
			var token mcp.ProgressToken
			if req.Params.Meta != nil {
				token = req.Params.Meta.ProgressToken
			}
			end := time.Now().Add(time.Duration(req.GetFloat("ms", 0)) * time.Millisecond)
			for i := 1; time.Now().Before(end); i++ {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
				if token != nil {
					server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress", map[string]any{"progressToken": token, "progress": i})
				}
			}
			return mcp.NewToolResultText("slow done"), nil
		})
	if _, err := os.Stat("env-tool"); err == nil {
		s.AddTool(mcp.NewTool("env", mcp.WithDescription("Shows an environment variable."), mcp.WithString("name", mcp.Required())),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				name := req.GetString("name", "")
				logCall("env " + name)
				line := name + " is " + os.Getenv(name)
				fmt.Fprintln(os.Stderr, "fixture: "+line)
				return mcp.NewToolResultText(line), nil
			})
	}
	if _, err := os.Stat("extra-tool"); err == nil {
		s.AddTool(mcp.NewTool("extra", mcp.WithDescription("A tool added after pinning.")),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				logCall("extra")
				return mcp.NewToolResultText("extra ran"), nil
			})
	}
	fmt.Fprintln(os.Stderr, "fixture: started")
	if err := server.ServeStdio(s); err != nil {
		fmt.Fprintln(os.Stderr, "fixture:", err)
		os.Exit(1)
	}
}

// hologram is a content block of a type MCP does not define.
type hologram struct{ mcp.TextContent }

func (hologram) MarshalJSON() ([]byte, error) { return []byte(`{"type":"hologram","data":"?"}`), nil }

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/tools/code"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

// callClientName is the MCP client name `agentmesh call` governs its call
// under (audit entries' "client").
const callClientName = "agentmesh call"

type callOptions struct {
	Tool string
	Args []string
	JSON string
}

func newCallCmd(g *globals) *cobra.Command {
	opts := callOptions{}
	cmd := &cobra.Command{
		Use:   "call TOOL [--arg KEY=VALUE]... [--json '{...}']",
		Short: "Make one governed call with the configured tools and upstreams",
		Long: `Call runs what serve runs for one tool call, in this process: the configured
built-in tools and upstreams, the credential, trust, policies, redaction,
and the audit log. It prints the result on stdout and the decision (with the
audit entry's seq and the trust score) on stderr. Exit status 1 when the call
is refused or fails.

--arg KEY=VALUE sets a string argument (repeatable); --json gives the
arguments as a JSON object (for numbers, booleans and nesting); --arg wins
over --json for the same key.`,
		Example: `  agentmesh call filesystem_read --arg path=/data/users.json
  agentmesh call database_query --arg query='SELECT name FROM users'
  agentmesh call api_call --json '{"url": "https://api.weather.com/v1/forecast?city=Paris"}'
  agentmesh call files__read_text_file --arg path=/srv/docs/readme.md --output json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(c, "call needs the TOOL to call, e.g. agentmesh call filesystem_read --arg path=/data/users.json")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Tool = args[0]
			return callRun(g, opts)
		},
	}
	cmd.Flags().StringArrayVar(&opts.Args, "arg", nil, "a string argument KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&opts.JSON, "json", "", "the arguments as a JSON object")
	return cmd
}

// callArgs merges --json and --arg.
func callArgs(opts callOptions) (map[string]any, error) {
	args := map[string]any{}
	if opts.JSON != "" {
		if err := json.Unmarshal([]byte(opts.JSON), &args); err != nil || args == nil {
			return nil, fmt.Errorf("call: --json must be a JSON object such as '{\"path\": \"/data/users.json\"}': %v", err)
		}
	}
	for _, a := range opts.Args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("call: --arg %q: want KEY=VALUE, e.g. --arg path=/data/users.json", a)
		}
		args[k] = v
	}
	return args, nil
}

func callRun(g *globals, opts callOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	args, err := callArgs(opts)
	if err != nil {
		return err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	exe, err := selfExe()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := mcpserver.Open(ctx, cfg, mcpserver.Options{Stderr: g.io.Err, Quiet: format == ui.JSON, Version: currentBuild().Version,
		SandboxExe: exe, SandboxArgs: []string{code.ChildCommand}})
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	defer rt.Close()
	c, err := client.NewInProcessClient(rt.MCP)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: callClientName, Version: currentBuild().Version}
	if _, err := c.Initialize(ctx, init); err != nil {
		return err
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = opts.Tool, args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return problemf("call %s: %v (agentmesh tools list, or the tools of `agentmesh policy explain`, show what can be called)", opts.Tool, err)
	}
	entry := lastCallEntry(ctx, rt.Log, opts.Tool)
	if format == ui.JSON {
		out := map[string]any{"tool": opts.Tool, "is_error": res.IsError, "content": res.Content}
		if res.StructuredContent != nil {
			out["structured_content"] = res.StructuredContent
		}
		if entry != nil {
			e := entry.Entry
			out["seq"], out["result"], out["reason"], out["rules"], out["trust_score"] = e.Seq, e.Result, e.Reason, e.Rules, e.TrustScore
		}
		if err := ui.WriteJSON(g.io.Out, out); err != nil {
			return err
		}
	} else {
		for _, ct := range res.Content {
			if tc, ok := ct.(mcp.TextContent); ok {
				fmt.Fprintln(g.io.Out, tc.Text)
			}
		}
	}
	if res.IsError {
		return silentProblem
	}
	return nil
}

// lastCallEntry finds this process's audit entry of the call (the newest
// of the tool made by `agentmesh call`).
// With a PostgreSQL state database (no local log) there is none.
func lastCallEntry(ctx context.Context, l *auditlog.Log, tool string) *auditlog.Stored {
	if l == nil {
		return nil
	}
	entries, err := l.List(ctx, auditlog.Filter{Tool: tool, AfterSeq: -1, Limit: 20})
	if err != nil {
		return nil
	}
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Entry.Client == callClientName && entries[i].Entry.Action != "tool_intent" {
			return &entries[i]
		}
	}
	return nil
}

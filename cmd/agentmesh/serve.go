package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/tools/code"
)

type serveOptions struct {
	HTTP             string
	AllowNonLoopback bool
	Quiet            bool
	LogFormat        string
}

func newServeCmd(g *globals) *cobra.Command {
	opts := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the governed MCP server (stdio, or streamable HTTP with --http)",
		Long: `Serve runs the agentmesh MCP server with the built-in governed tools
(filesystem_read, filesystem_list, filesystem_write, database_query, api_call,
code_execute). Every call passes the governance pipeline: credential and
scopes, trust, policy, the tool's own guards, redaction, and a durable audit
entry with the trust update.

By default it speaks JSON-RPC on stdin/stdout, as Claude Desktop launches it;
stdout then carries only JSON-RPC and the console view (✓ allowed / ✗ blocked,
audit sequence numbers, trust changes) goes to stderr. With no agentmesh.yaml
it runs on embedded defaults: an identity is created on first start, and
sample data is mounted at /data.

Policies reload when their files change and on SIGHUP; a reload that fails
validation keeps the last good policy. SIGINT/SIGTERM or closing stdin stop
the server after flushing the audit log.`,
		Example: `  agentmesh serve
  agentmesh serve --config /etc/agentmesh/agentmesh.yaml
  agentmesh serve --http 127.0.0.1:8080
  agentmesh serve --log-format json 2> decisions.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.LogFormat != "text" && opts.LogFormat != "json" {
				return usageError(c, "--log-format %q: want text or json", opts.LogFormat)
			}
			return serveRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.HTTP, "http", "", "serve streamable HTTP at ADDR/mcp instead of stdio (e.g. 127.0.0.1:8080)")
	f.BoolVar(&opts.AllowNonLoopback, "allow-non-loopback", false, "allow --http on a non-loopback address (no client authentication yet)")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no per-call console lines on stderr")
	f.StringVar(&opts.LogFormat, "log-format", "text", "console lines as text or json (one object per line)")
	return cmd
}

func serveRun(g *globals, opts serveOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	exe, err := selfExe()
	if err != nil {
		return fmt.Errorf("serve: finding the agentmesh executable (for the code sandbox): %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := mcpserver.Open(ctx, cfg, mcpserver.Options{
		Stderr: g.io.Err, Quiet: opts.Quiet, LogJSON: opts.LogFormat == "json",
		Version: currentBuild().Version, SandboxExe: exe, SandboxArgs: []string{code.ChildCommand},
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer rt.Close()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			rt.ReloadPolicy()
		}
	}()
	if !opts.Quiet {
		fmt.Fprintf(g.io.Err, "agentmesh: serving %s as %s (%d tools; state %s)\n", transportName(opts), rt.ID.DID(), len(rt.Tools), cfg.Source.StateDir)
	}
	if opts.HTTP != "" {
		return rt.ServeHTTP(ctx, mcpserver.HTTPOptions{Addr: opts.HTTP, AllowNonLoopback: opts.AllowNonLoopback || cfg.HTTP.AllowNonLoopback,
			Ready: func(addr string) { fmt.Fprintf(g.io.Err, "agentmesh: listening on http://%s/mcp\n", addr) }})
	}
	return rt.ServeStdio(ctx, g.io.In, g.io.Out)
}

func transportName(o serveOptions) string {
	if o.HTTP != "" {
		return "streamable HTTP on " + o.HTTP
	}
	return "stdio"
}

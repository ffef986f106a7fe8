package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/google/shlex"
	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/httpguard"

	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/tools/code"
)

type serveOptions struct {
	HTTP string
	// AllowUnauthenticated is --allow-unauthenticated-non-loopback (or its
	// deprecated alias --allow-non-loopback).
	AllowUnauthenticated bool
	// AllowNonLoopback is the deprecated spelling.
	AllowNonLoopback bool
	Quiet            bool
	LogFormat        string
	// Upstreams are --upstream NAME=COMMAND [ARGS] values.
	Upstreams []string
	// Command is what follows "--": a single upstream.
	Command      []string
	UpstreamName string
	Prefix       string
	PrefixSet    bool
	Pin          string
	// NoBuiltinTools serves only the upstreams' tools.
	NoBuiltinTools bool
	// NoConfigUpstreams ignores the configuration's upstreams: only those
	// given on the command line are served.
	NoConfigUpstreams bool
	// Metrics is --metrics ADDR: Prometheus metrics and health on a
	// separate listener (overrides http.metrics_addr).
	Metrics string
}

func newServeCmd(g *globals) *cobra.Command {
	opts := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve [-- COMMAND [ARGS...]]",
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

Existing MCP servers are governed too: upstreams from agentmesh.yaml, each
--upstream NAME=COMMAND [ARGS] (split like a shell would), or one command
after "--". Their tools are exposed as NAME__tool with the upstream's own
schemas, their resources and prompts forwarded, and every tools/call,
resources/read and prompts/get passes the same pipeline. Each tool's
definition is pinned on first sight; a changed or new definition is refused
until ` + "`agentmesh tools approve`" + ` (see ` + "`agentmesh tools --help`" + `). A crashed
upstream is restarted with backoff; its stderr is shown prefixed with its name.

Policies reload when their files change and on SIGHUP; a reload that fails
validation keeps the last good policy. SIGINT/SIGTERM or closing stdin stop
the server after flushing the audit log.`,
		Example: `  agentmesh serve
  agentmesh serve --config /etc/agentmesh/agentmesh.yaml
  agentmesh serve --http 127.0.0.1:8080
  agentmesh serve --http 127.0.0.1:8080 --metrics 127.0.0.1:9464
  agentmesh serve --log-format json 2> decisions.jsonl
  agentmesh serve -- npx -y @modelcontextprotocol/server-filesystem /srv/files
  agentmesh serve --upstream-name files --prefix "" -- npx -y @modelcontextprotocol/server-filesystem /srv
  agentmesh serve --upstream 'gh=npx -y @modelcontextprotocol/server-github' --upstream 'db=uvx mcp-server-sqlite --db-path app.db'`,
		Args: func(c *cobra.Command, args []string) error {
			if c.ArgsLenAtDash() < 0 && len(args) > 0 {
				return usageError(c, "unexpected argument %q: put an upstream command after \"--\" (agentmesh serve -- COMMAND ARGS)", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if opts.LogFormat != "text" && opts.LogFormat != "json" {
				return usageError(c, "--log-format %q: want text or json", opts.LogFormat)
			}
			if err := config.CheckMetricsAddr(opts.Metrics); err != nil {
				return usageError(c, "--metrics %q: %v", opts.Metrics, err)
			}
			opts.Command = args
			opts.PrefixSet = c.Flags().Changed("prefix")
			if len(args) == 0 && (c.Flags().Changed("upstream-name") || opts.PrefixSet) {
				return usageError(c, "--upstream-name and --prefix apply to the command after \"--\"")
			}
			if opts.AllowNonLoopback {
				fmt.Fprintln(g.io.Err, "agentmesh: warning: --allow-non-loopback is deprecated: use --allow-unauthenticated-non-loopback (it says what it allows)")
				opts.AllowUnauthenticated = true
			}
			return serveRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.HTTP, "http", "", "serve streamable HTTP at ADDR/mcp instead of stdio (e.g. 127.0.0.1:8080)")
	f.BoolVar(&opts.AllowUnauthenticated, "allow-unauthenticated-non-loopback", false, "serve --http on a non-loopback address WITHOUT client authentication: anyone who can reach it can call tools")
	f.BoolVar(&opts.AllowNonLoopback, "allow-non-loopback", false, "deprecated: --allow-unauthenticated-non-loopback")
	f.MarkHidden("allow-non-loopback")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no per-call console lines on stderr")
	f.StringVar(&opts.LogFormat, "log-format", "text", "console lines as text or json (one object per line)")
	f.StringArrayVar(&opts.Upstreams, "upstream", nil, "govern an MCP server: NAME=COMMAND [ARGS] (repeatable)")
	f.StringVar(&opts.UpstreamName, "upstream-name", "upstream", "name of the upstream given after \"--\"")
	f.StringVar(&opts.Prefix, "prefix", "", "tool name prefix of the upstream after \"--\" (default NAME__; \"\" for none)")
	f.StringVar(&opts.Pin, "pin", "", "pin mode of command-line upstreams: strict or new-allowed (default strict)")
	f.BoolVar(&opts.NoBuiltinTools, "no-builtin-tools", false, "serve only the upstreams' tools (as install claude --govern writes it)")
	f.StringVar(&opts.Metrics, "metrics", "", "serve Prometheus /metrics, /healthz and /readyz on a separate listener at ADDR (e.g. 127.0.0.1:9464; default http.metrics_addr)")
	f.BoolVar(&opts.NoConfigUpstreams, "no-config-upstreams", false, "ignore the configuration's upstreams: serve only those on the command line")
	return cmd
}

// commandLineUpstreams turns --upstream values and the command after "--"
// into upstream configurations.
func commandLineUpstreams(opts serveOptions) ([]config.Upstream, error) {
	var ups []config.Upstream
	for _, v := range opts.Upstreams {
		name, command, ok := strings.Cut(v, "=")
		if !ok || name == "" || strings.TrimSpace(command) == "" {
			return nil, fmt.Errorf("--upstream %q: want NAME=COMMAND [ARGS], e.g. --upstream 'files=npx -y @modelcontextprotocol/server-filesystem /srv'", v)
		}
		words, err := shlex.Split(command)
		if err != nil || len(words) == 0 {
			return nil, fmt.Errorf("--upstream %q: cannot split the command: %v", v, err)
		}
		ups = append(ups, config.Upstream{Name: name, Command: words[0], Args: words[1:], Pin: opts.Pin})
	}
	if len(opts.Command) > 0 {
		u := config.Upstream{Name: opts.UpstreamName, Command: opts.Command[0], Args: opts.Command[1:], Pin: opts.Pin}
		if opts.PrefixSet {
			u.Prefix = &opts.Prefix
		}
		ups = append(ups, u)
	}
	return ups, nil
}

func serveRun(g *globals, opts serveOptions) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	extra, err := commandLineUpstreams(opts)
	if err != nil {
		return err
	}
	if opts.NoConfigUpstreams {
		cfg.Upstreams = nil
	}
	if len(extra) > 0 {
		cfg.Upstreams = append(cfg.Upstreams, extra...)
		if err := cfg.ValidateUpstreams(); err != nil {
			return err
		}
	}
	if opts.NoBuiltinTools {
		t := &cfg.Tools
		t.Filesystem.Enabled, t.Database.Enabled, t.API.Enabled, t.Code.Enabled = false, false, false, false
	}
	exe, err := selfExe()
	if err != nil {
		return fmt.Errorf("serve: finding the agentmesh executable (for the code sandbox): %w", err)
	}
	// Bind first: a start that cannot listen says so and writes nothing.
	var ln net.Listener
	httpOpts := mcpserver.HTTPOptions{Addr: opts.HTTP, Authenticated: httpAuthenticated(cfg),
		AllowUnauthenticated: opts.AllowUnauthenticated || cfg.HTTP.AllowsUnauthenticated()}
	if opts.HTTP != "" {
		if ln, err = listenHTTP(g, cfg, httpOpts); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		defer ln.Close()
	}
	metricsAddr := cfg.HTTP.MetricsAddr
	if opts.Metrics != "" {
		metricsAddr = opts.Metrics
	}
	var mln net.Listener
	if metricsAddr != "" {
		if mln, err = net.Listen("tcp", metricsAddr); err != nil {
			return fmt.Errorf("serve: the metrics listener: %w", err)
		}
		defer mln.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rt, err := mcpserver.Open(ctx, cfg, mcpserver.Options{
		Stderr: g.io.Err, Quiet: opts.Quiet, LogJSON: opts.LogFormat == "json",
		Version: currentBuild().Version, SandboxExe: exe, SandboxArgs: []string{code.ChildCommand},
		Metrics: mln != nil,
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer rt.Close()
	if mln != nil {
		fmt.Fprintf(g.io.Err, "agentmesh: metrics on http://%s/metrics (health: /healthz, /readyz)\n", mln.Addr())
		go func() {
			if err := rt.ServeMetrics(ctx, mln); err != nil {
				fmt.Fprintf(g.io.Err, "agentmesh: warning: the metrics listener stopped: %v\n", err)
			}
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			rt.ReloadPolicy()
		}
	}()
	if !opts.Quiet {
		tools := fmt.Sprintf("%d tools", len(rt.Tools))
		if rt.Proxy != nil {
			n, proxied := rt.Proxy.Upstreams()
			tools = fmt.Sprintf("%d built-in tools, %d from %d upstream(s)", len(rt.Tools), proxied, n)
		}
		where := cfg.Source.StateDir
		if rt.DatabaseName() != "" {
			where = fmt.Sprintf("keys %s, database %s", cfg.Source.StateDir, rt.DatabaseName())
		}
		fmt.Fprintf(g.io.Err, "agentmesh: serving %s as %s (%s; state %s)\n", transportName(opts), rt.ID.DID(), tools, where)
	}
	if opts.HTTP != "" {
		httpOpts.Listener = ln
		scheme := "http"
		if cfg.HTTP.TLS() {
			scheme = "https"
		}
		httpOpts.Ready = func(addr string) {
			fmt.Fprintf(g.io.Err, "agentmesh: listening on %s://%s%s\n", scheme, addr, mcpserver.Endpoint)
		}
		return rt.ServeHTTP(ctx, httpOpts)
	}
	return rt.ServeStdio(ctx, g.io.In, g.io.Out)
}

func transportName(o serveOptions) string {
	if o.HTTP != "" {
		return "streamable HTTP on " + o.HTTP
	}
	return "stdio"
}

// httpAuthenticated says whether client authentication (OAuth, API keys) is
// configured for `serve --http`. None exists yet: the authentication work
// sets this from its configuration.
func httpAuthenticated(cfg *config.Config) bool { return cfg.Auth.Enabled() }

// listenHTTP checks the TLS files and the listener rules, then binds:
// everything that can make an HTTP start fail, before any state is opened.
func listenHTTP(g *globals, cfg *config.Config, o mcpserver.HTTPOptions) (net.Listener, error) {
	warn := func(m string) { fmt.Fprintf(g.io.Err, "agentmesh: warning: %s\n", m) }
	if cfg.HTTP.AllowNonLoopback {
		warn("http.allow_non_loopback is deprecated: it is now spelled http.allow_unauthenticated (it says what it allows)")
	}
	h := cfg.HTTP
	var cert, key, ca string
	if h.TLSCert != "" {
		cert, key = cfg.ResolvePath(h.TLSCert), cfg.ResolvePath(h.TLSKey)
	}
	if h.ClientCA != "" {
		ca = cfg.ResolvePath(h.ClientCA)
	}
	if err := httpguard.CheckTLSFiles(cert, key, ca); err != nil {
		return nil, err
	}
	return mcpserver.ListenHTTP(h, o, warn)
}

package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/lineio"
	"github.com/agentmesh/agentmesh/pkg/proxy"
)

const instructions = `This server is governed by agentmesh: every tool call is checked against a
short-lived credential's scopes, policies and the server's trust score, and
is recorded in a tamper-evident audit log. A refused call returns isError
with the reason; adapt the request rather than retrying it unchanged.`

func (rt *Runtime) buildServer() {
	// Capabilities (MCP 2025-11-25, "Lifecycle"): tools for the built-in
	// tools; what the upstreams offer is declared by the proxy when it
	// starts. Elicitation is a client capability: agentmesh uses the
	// client's, and declares none of its own.
	opts := []server.ServerOption{server.WithInstructions(instructions), server.WithRecovery()}
	if len(rt.Tools) > 0 || rt.Proxy == nil {
		opts = append(opts, server.WithToolCapabilities(true))
	}
	resolve := governance.BuiltinResolver(rt.Tools...)
	if rt.Proxy != nil {
		resolve = governance.FirstOf(resolve, rt.Proxy.Resolve)
		opts = append(opts, rt.Proxy.ServerOptions()...)
	}
	opts = append(opts, rt.Pipeline.ServerOptions(resolve)...)
	s := server.NewMCPServer("agentmesh", rt.version(), opts...)
	rt.approver.srv = s
	for _, t := range rt.Tools {
		s.AddTool(t.Definition(), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return t.Call(ctx, req.GetArguments())
		})
	}
	rt.MCP = s
}

func (rt *Runtime) version() string {
	if rt.opts.Version == "" {
		return "dev"
	}
	return rt.opts.Version
}

// MaxMessageBytes bounds one JSON-RPC message on stdio; a longer line is
// discarded (the client gets a parse error) instead of growing memory.
const MaxMessageBytes = 16 << 20

// ServeStdio serves JSON-RPC on in/out until in closes or ctx ends. Only
// JSON-RPC is written to out.
func (rt *Runtime) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	s := server.NewStdioServer(rt.MCP)
	s.SetErrorLogger(newLogger(rt.opts.Stderr))
	var r io.Reader = lineio.NewLimiter(in, MaxMessageBytes)
	if rt.Proxy != nil {
		// What agentmesh relays from upstreams goes out as they wrote it
		// (proxy.Wire).
		w := rt.Proxy.NewWire("stdio") // mcp-go's stdio session id
		r = proxy.NewLineMapper(r, func(line []byte) []byte { w.FromClient(line); return line })
		out = proxy.NewLineWriter(out, w.ToClient)
	}
	// Over stdio the caller is the OS user who started the server.
	err := s.Listen(caller.NewContext(ctx, caller.ForLocalUser()), r, out)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// HTTPOptions configure `serve --http`.
type HTTPOptions struct {
	Addr string
	// AllowNonLoopback permits a non-loopback listen address (there is no
	// authentication yet).
	AllowNonLoopback bool
	// Listener, when set, is already bound (ListenHTTP): a start that
	// cannot listen fails before anything is opened or written.
	Listener net.Listener
	// Ready is called with the bound address once listening.
	Ready func(addr string)
}

// ListenHTTP checks `serve --http ADDR` and binds it: a non-loopback
// address needs allowNonLoopback (there is no client authentication yet).
// warn is told when a non-loopback address is bound.
func ListenHTTP(addr string, allowNonLoopback bool, warn func(string)) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: want HOST:PORT such as 127.0.0.1:8080", addr)
	}
	if !isLoopback(host) {
		if !allowNonLoopback {
			return nil, fmt.Errorf("--http %s is not a loopback address: agentmesh has no client authentication yet; pass --allow-non-loopback to bind it anyway", addr)
		}
		if warn != nil {
			warn(fmt.Sprintf("serving on non-loopback %s without client authentication: anyone who can reach it can call tools (governed, but unauthenticated)", addr))
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	return ln, nil
}

// ServeHTTP serves streamable HTTP at /mcp until ctx ends. mcp-go's
// DNS-rebinding protection stays on.
func (rt *Runtime) ServeHTTP(ctx context.Context, o HTTPOptions) error {
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = ListenHTTP(o.Addr, o.AllowNonLoopback, func(m string) { rt.warnf("%s", m) }); err != nil {
			return err
		}
	}
	// Stateful: a session exists only after initialize and ends with
	// DELETE (later requests with its id get 404), per MCP 2025-11-25
	// "Session Management".
	h := server.NewStreamableHTTPServer(rt.MCP, server.WithEndpointPath("/mcp"), server.WithStateful(true))
	mux := http.NewServeMux()
	var handler http.Handler = h
	if rt.Proxy != nil {
		handler = newWireHandler(h, rt.Proxy)
	}
	// Each session belongs to the caller that created it.
	owners := newSessionOwners(handler)
	if hooks := rt.MCP.GetHooks(); hooks != nil {
		hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) { owners.forget(s.SessionID()) })
	}
	mux.Handle("/mcp", owners)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		// Close the MCP sessions (and their event streams) first, then give
		// in-flight calls a moment to finish: their audit entries are
		// written either way.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		h.Shutdown(sctx)
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		return nil
	case err := <-errc:
		return err
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(w io.Writer) *log.Logger { return log.New(w, "agentmesh: mcp: ", 0) }

package mcpserver

import (
	"context"
	"errors"
	"io"
	"log"

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

func newLogger(w io.Writer) *log.Logger { return log.New(w, "agentmesh: mcp: ", 0) }

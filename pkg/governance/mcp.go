package governance

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// AccessFunc says what a call with the given arguments touches.
type AccessFunc func(args map[string]any) (tools.Access, error)

// Resolver returns the AccessFunc of a tool, or nil for an unknown tool.
type Resolver func(tool string) AccessFunc

// ServerOptions returns the mcp-go server options that put every tool call
// of the server through p: a tool handler middleware (no registered tool,
// present or future, can bypass it) and a hook that audits calls to tools
// the server does not have (mcp-go answers those with a JSON-RPC error
// before any middleware runs).
func (p *Pipeline) ServerOptions(resolve Resolver) []server.ServerOption {
	hooks := &server.Hooks{}
	hooks.AddOnError(func(ctx context.Context, id any, method mcp.MCPMethod, message any, err error) {
		if method != mcp.MethodToolsCall || !errors.Is(err, server.ErrToolNotFound) {
			return
		}
		c := Call{Client: clientName(ctx)}
		if req, ok := message.(*mcp.CallToolRequest); ok {
			c.Tool, c.Args = req.Params.Name, req.GetArguments()
		}
		p.Run(ctx, c, nil) // audited as blocked: unknown tool
	})
	return []server.ServerOption{
		server.WithToolHandlerMiddleware(p.ToolMiddleware(resolve)),
		server.WithHooks(hooks),
	}
}

// ToolMiddleware governs each call before the tool's handler runs.
func (p *Pipeline) ToolMiddleware(resolve Resolver) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			c := Call{Tool: req.Params.Name, Args: req.GetArguments(), Client: clientName(ctx), Access: resolve(req.Params.Name)}
			return p.Run(ctx, c, func(ctx context.Context) (*mcp.CallToolResult, error) { return next(ctx, req) })
		}
	}
}

// BuiltinResolver resolves tools by name from a set of tools.Tool.
func BuiltinResolver(ts ...tools.Tool) Resolver {
	byName := map[string]tools.Tool{}
	for _, t := range ts {
		byName[t.Definition().Name] = t
	}
	return func(name string) AccessFunc {
		t, ok := byName[name]
		if !ok {
			return nil
		}
		return t.Access
	}
}

// CallAccess is the access of a tool that does not describe its own: the
// resource mcp:<server>/<tool>, action call. Go authors governing their own
// tools use it in their Resolver; scopes then name "mcp:<server>/*".
func CallAccess(server, tool string) AccessFunc {
	return func(map[string]any) (tools.Access, error) {
		return tools.Access{Kind: scope.MCP, Target: server + "/" + tool, Action: scope.Call}, nil
	}
}

// clientName is the MCP client's name from its initialize request, when the
// transport kept it.
func clientName(ctx context.Context) string {
	s := server.ClientSessionFromContext(ctx)
	if ci, ok := s.(server.SessionWithClientInfo); ok {
		return ci.GetClientInfo().Name
	}
	return ""
}

package governance

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// AccessFunc says what a call with the given arguments touches.
type AccessFunc func(args map[string]any) (tools.Access, error)

// Route is what the pipeline knows about a tool before calling it: what a
// call touches and, for a tool proxied from an upstream MCP server, which
// upstream and which of its tools (the policy environment's upstream and
// upstream_tool).
type Route struct {
	Access                 AccessFunc
	Upstream, UpstreamTool string
	// Kind, when set, is the kind and action of every call
	// (tools.Kinded), for listings.
	Kind *tools.Access
}

// Resolver returns the route of a tool; ok is false for an unknown tool.
type Resolver func(tool string) (r Route, ok bool)

// FirstOf resolves a tool with the first resolver that knows it.
func FirstOf(rs ...Resolver) Resolver {
	return func(tool string) (Route, bool) {
		for _, r := range rs {
			if rt, ok := r(tool); ok {
				return rt, true
			}
		}
		return Route{}, false
	}
}

// ServerOptions returns the mcp-go server options that put every tool call
// of the server through p: a tool handler middleware (no registered tool,
// present or future, can bypass it) and a hook that audits calls to tools
// the server does not have (mcp-go answers those with a JSON-RPC error
// before any middleware runs).
func (p *Pipeline) ServerOptions(resolve Resolver) []server.ServerOption {
	hooks := &server.Hooks{}
	hooks.AddOnError(func(ctx context.Context, id any, method mcp.MCPMethod, message any, err error) {
		switch {
		case method == mcp.MethodResourcesRead && errors.Is(err, server.ErrResourceNotFound):
			// A URI no resource or template serves: recorded like an
			// unknown tool, so probing leaves a trace.
			c := Call{Tool: string(method), Client: ClientName(ctx), Method: string(method)}
			if req, ok := message.(*mcp.ReadResourceRequest); ok {
				c.URI, c.Args = req.Params.URI, map[string]any{"uri": req.Params.URI}
			}
			p.Run(ctx, c, nil)
			return
		case method == mcp.MethodPromptsGet && errors.Is(err, server.ErrPromptNotFound):
			c := Call{Client: ClientName(ctx), Method: string(method)}
			if req, ok := message.(*mcp.GetPromptRequest); ok {
				c.Tool = req.Params.Name
			}
			p.Run(ctx, c, nil)
			return
		case method != mcp.MethodToolsCall:
			return
		}
		var malformed *server.UnparsableMessageError
		if errors.As(err, &malformed) {
			// mcp-go answers with a JSON-RPC error before any handler
			// runs; the attempt is still recorded.
			c := Call{Client: ClientName(ctx), Method: string(mcp.MethodToolsCall), Access: func(map[string]any) (tools.Access, error) {
				return tools.Access{}, tools.Refuse("arguments", "malformed tools/call request: %v", malformed.Unwrap())
			}}
			if req, ok := message.(*mcp.CallToolRequest); ok {
				c.Tool = req.Params.Name
			}
			p.Run(ctx, c, nil)
			return
		}
		if !errors.Is(err, server.ErrToolNotFound) {
			return
		}
		c := Call{Client: ClientName(ctx), Method: string(mcp.MethodToolsCall)}
		if req, ok := message.(*mcp.CallToolRequest); ok {
			ctx = p.WithTraceParent(ctx, req.Params.Meta)
			c.Tool, c.Args = req.Params.Name, req.GetArguments()
			// A tool the server holds back (an unapproved upstream tool)
			// is still known to the resolver: its refusal is recorded.
			if r, ok := resolve(c.Tool); ok {
				c.Access, c.Upstream, c.UpstreamTool = r.Access, r.Upstream, r.UpstreamTool
			}
		}
		p.Run(ctx, c, func(context.Context) (*mcp.CallToolResult, error) {
			return nil, fmt.Errorf("%s is not available", c.Tool)
		}) // audited as blocked (unknown tool, or the reason it is held back)
	})
	// Listings show an authenticated caller only what it could call
	// (Visible). mcp-go applies the tool and prompt filters to calls too:
	// a hidden tool's call reaches the hook above and is refused and
	// audited with the pipeline's own reason.
	hooks.AddAfterListResources(func(ctx context.Context, id any, message *mcp.ListResourcesRequest, result *mcp.ListResourcesResult) {
		kept := result.Resources[:0]
		for _, r := range result.Resources {
			if p.Visible(ctx, Call{Tool: string(mcp.MethodResourcesRead), Method: string(mcp.MethodResourcesRead), URI: r.URI, Client: ClientName(ctx)}) {
				kept = append(kept, r)
			}
		}
		result.Resources = kept
	})
	return []server.ServerOption{
		server.WithToolHandlerMiddleware(p.ToolMiddleware(resolve)),
		server.WithHooks(hooks),
		server.WithToolFilter(func(ctx context.Context, ts []mcp.Tool) []mcp.Tool {
			kept := make([]mcp.Tool, 0, len(ts))
			for _, t := range ts {
				c := Call{Tool: t.Name, Method: string(mcp.MethodToolsCall), Client: ClientName(ctx)}
				if r, ok := resolve(t.Name); ok {
					c.Access, c.Upstream, c.UpstreamTool, c.kind = r.Access, r.Upstream, r.UpstreamTool, r.Kind
				}
				if p.Visible(ctx, c) {
					kept = append(kept, t)
				}
			}
			return kept
		}),
		server.WithPromptFilter(func(ctx context.Context, ps []mcp.Prompt) []mcp.Prompt {
			kept := make([]mcp.Prompt, 0, len(ps))
			for _, pr := range ps {
				if p.Visible(ctx, Call{Tool: pr.Name, Method: string(mcp.MethodPromptsGet), Client: ClientName(ctx)}) {
					kept = append(kept, pr)
				}
			}
			return kept
		}),
	}
}

// ToolMiddleware governs each call before the tool's handler runs.
func (p *Pipeline) ToolMiddleware(resolve Resolver) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			c := Call{Tool: req.Params.Name, Args: req.GetArguments(), Client: ClientName(ctx), Method: string(mcp.MethodToolsCall)}
			if r, ok := resolve(req.Params.Name); ok && r.Access != nil {
				c.Access, c.Upstream, c.UpstreamTool = r.Access, r.Upstream, r.UpstreamTool
			}
			ctx = p.WithTraceParent(ctx, req.Params.Meta)
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
	return func(name string) (Route, bool) {
		t, ok := byName[name]
		if !ok {
			return Route{}, false
		}
		r := Route{Access: t.Access}
		if k, ok := t.(tools.Kinded); ok {
			acc := k.AccessKind()
			r.Kind = &acc
		}
		return r, true
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

// ClientName is the MCP client's name from its initialize request, when the
// transport kept it.
func ClientName(ctx context.Context) string {
	s := server.ClientSessionFromContext(ctx)
	if ci, ok := s.(server.SessionWithClientInfo); ok {
		return ci.GetClientInfo().Name
	}
	return ""
}

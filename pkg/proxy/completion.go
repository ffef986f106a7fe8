package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Completions (MCP 2025-11-25, "Server Utilities: Completion") through the
// proxy: completion/complete for a prompt's argument goes to the upstream
// serving that prompt (under its own name), for a resource template's to
// the upstream serving the template. Each is governed like a read of that
// prompt or resource (access read of mcp:<upstream>/<prompt> or
// mcp:<upstream>/<escaped URI>, method "completion/complete", audited), and
// the values pass output rules and redaction. An upstream that does not
// offer completions is not asked: the request fails with a message naming
// it.

type promptCompleter struct{ p *Proxy }

func (c promptCompleter) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	p := c.p
	p.mu.RLock()
	pt, ok := p.prompts[name]
	p.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("completion/complete: no upstream serves the prompt %q", name)
	}
	call := governance.Call{
		Tool: name, Args: map[string]any{"argument": arg.Name, "value": arg.Value}, Client: governance.ClientName(ctx),
		Upstream: pt.up.cfg.Name, UpstreamTool: pt.name, Method: string(mcp.MethodCompletionComplete),
		Access: func(map[string]any) (tools.Access, error) {
			return tools.Access{Kind: scope.MCP, Target: pt.up.cfg.Name + "/" + pt.name, Action: scope.Read}, nil
		},
	}
	ref := map[string]any{"type": "ref/prompt", "name": pt.name}
	return p.complete(ctx, pt.up, call, ref, arg, cc)
}

type resourceCompleter struct{ p *Proxy }

func (c resourceCompleter) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	p := c.p
	p.mu.RLock()
	u, ok := p.templates[uri]
	if !ok {
		u, ok = p.resources[uri]
	}
	p.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("completion/complete: no upstream serves the resource template %q", uri)
	}
	call := governance.Call{
		Tool: string(mcp.MethodCompletionComplete), Args: map[string]any{"argument": arg.Name, "value": arg.Value}, Client: governance.ClientName(ctx),
		Upstream: u.cfg.Name, Method: string(mcp.MethodCompletionComplete), URI: uri,
		Access: func(map[string]any) (tools.Access, error) {
			return tools.Access{Kind: scope.MCP, Target: resourceTarget(u.cfg.Name, uri), Action: scope.Read}, nil
		},
	}
	ref := map[string]any{"type": "ref/resource", "uri": uri}
	return p.complete(ctx, u, call, ref, arg, cc)
}

// complete forwards one completion/complete through the pipeline.
func (p *Proxy) complete(ctx context.Context, u *upstream, call governance.Call, ref map[string]any, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	if c, _ := u.caps(); c.Completions == nil {
		return nil, fmt.Errorf("completion/complete: upstream %s does not offer completions", u.cfg.Name)
	}
	var got struct {
		Completion struct {
			Values  []string `json:"values"`
			Total   int      `json:"total,omitempty"`
			HasMore bool     `json:"hasMore,omitempty"`
		} `json:"completion"`
	}
	var rawCompletion struct {
		Completion json.RawMessage `json:"completion"`
	}
	res, err := p.opts.Pipeline.Run(ctx, call, func(ctx context.Context) (*mcp.CallToolResult, error) {
		defer u.begin(ctx, call.Tool)()
		params := map[string]any{"ref": ref, "argument": map[string]any{"name": arg.Name, "value": arg.Value}}
		if len(cc.Arguments) > 0 {
			params["context"] = map[string]any{"arguments": cc.Arguments}
		}
		raw, err := u.call(ctx, string(mcp.MethodCompletionComplete), params)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			return nil, fmt.Errorf("upstream %s sent a malformed completion/complete result: %v", u.cfg.Name, err)
		}
		json.Unmarshal(raw, &rawCompletion)
		// Each value is a text block, so that output rules and redaction
		// see them as they see any output.
		out := &mcp.CallToolResult{Content: []mcp.Content{}}
		for _, v := range got.Completion.Values {
			out.Content = append(out.Content, mcp.NewTextContent(v))
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	if res.IsError {
		return nil, errors.New(resultText(res))
	}
	if len(res.Content) != len(got.Completion.Values) {
		return nil, errors.New("completion/complete: agentmesh withheld the upstream's values")
	}
	values := make([]string, 0, len(res.Content))
	for _, c := range res.Content {
		values = append(values, contentText(c))
	}
	// The completion object as the upstream wrote it (with the values as
	// governed) goes out through Wire: mcp-go would drop "hasMore": false.
	if len(rawCompletion.Completion) > 0 {
		if v, err := json.Marshal(values); err == nil {
			if out, err := withMember(rawCompletion.Completion, "values", v); err == nil {
				p.storeCompletion(completionKey(ctx, ref, arg), out)
			}
		}
	}
	return &mcp.Completion{Values: values, Total: got.Completion.Total, HasMore: got.Completion.HasMore}, nil
}

// completionKey names one completion request of a client session until
// the hook after it (hooks.go) knows its JSON-RPC id.
func completionKey(ctx context.Context, ref map[string]any, arg mcp.CompleteArgument) string {
	session := ""
	if s := server.ClientSessionFromContext(ctx); s != nil {
		session = s.SessionID()
	}
	b, _ := json.Marshal([]any{session, ref, arg.Name, arg.Value})
	return string(b)
}

// completionTTL bounds how long a governed completion object waits for
// Wire (one that no wire takes, e.g. on a transport without one, goes).
const completionTTL = time.Minute

type pendingCompletion struct {
	raw json.RawMessage
	at  time.Time
}

// storeCompletion keeps raw under key, and drops entries left too long.
func (p *Proxy) storeCompletion(key string, raw json.RawMessage) {
	now := time.Now()
	p.completions.Range(func(k, v any) bool {
		if now.Sub(v.(pendingCompletion).at) > completionTTL {
			p.completions.Delete(k)
		}
		return true
	})
	p.completions.Store(key, pendingCompletion{raw: raw, at: now})
}

package proxy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// installHooks adds the proxy's mcp-go hooks to the server's (the
// pipeline's hooks are there already): logging/setLevel and resource
// (un)subscriptions are forwarded, and a client session's end releases
// what it held.
func (p *Proxy) installHooks() {
	h := p.srv.GetHooks()
	if h == nil {
		h = &server.Hooks{}
		server.WithHooks(h)(p.srv)
	}
	h.AddAfterSetLevel(func(ctx context.Context, _ any, req *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil && p.offered.logging {
			p.setLevel(s.SessionID(), string(req.Params.Level))
		}
	})
	h.AddAfterComplete(func(ctx context.Context, id any, req *mcp.CompleteRequest, _ *mcp.CompleteResult) {
		var ref map[string]any
		switch r := req.Params.Ref.(type) {
		case mcp.PromptReference:
			ref = map[string]any{"type": "ref/prompt", "name": r.Name}
		case mcp.ResourceReference:
			ref = map[string]any{"type": "ref/resource", "uri": r.URI}
		default:
			return
		}
		v, ok := p.completions.LoadAndDelete(completionKey(ctx, ref, req.Params.Argument))
		s := server.ClientSessionFromContext(ctx)
		if !ok || s == nil {
			return
		}
		b, err := json.Marshal(id)
		if err != nil {
			return
		}
		p.completions.Store(s.SessionID()+"\x00"+compactID(b), v)
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		p.endSession(s.SessionID())
	})
	// tasks/* are answered, and task-augmented calls agentmesh cannot
	// relay refused, before mcp-go dispatches them (tasks.go).
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		if raw, ok := message.(json.RawMessage); ok {
			return p.interceptTask(ctx, raw)
		}
		return nil
	})
	// Subscribing is forwarded before mcp-go answers, so that an upstream's
	// refusal reaches the client as an error (hooks after the fact cannot
	// fail the request).
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		if !p.offered.subscribe {
			return nil
		}
		raw, ok := message.(json.RawMessage)
		if !ok {
			return nil
		}
		var m struct {
			Method string `json:"method"`
			Params struct {
				URI string `json:"uri"`
			} `json:"params"`
		}
		if json.Unmarshal(raw, &m) != nil || m.Params.URI == "" {
			return nil
		}
		var session string
		if s := server.ClientSessionFromContext(ctx); s != nil {
			session = s.SessionID()
		}
		switch mcp.MCPMethod(m.Method) {
		case mcp.MethodResourcesSubscribe:
			if err := p.subscribe(session, m.Params.URI); err != nil {
				return fmt.Errorf("resources/subscribe %s: %w", m.Params.URI, err)
			}
		case mcp.MethodResourcesUnsubscribe:
			if err := p.unsubscribe(session, m.Params.URI); err != nil {
				return fmt.Errorf("resources/unsubscribe %s: %w", m.Params.URI, err)
			}
		}
		return nil
	})
}

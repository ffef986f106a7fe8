package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/governance"
)

// Forwarding tools/call to its upstream, with progress under the client's
// token (MCP 2025-11-25, "Utilities: Progress").

type progressTarget struct {
	ctx   context.Context
	token any // the client's token; nil if it asked for no progress
	sent  atomic.Int64
	alive chan struct{} // signalled on every progress notification
}

// flushNotifications waits (briefly) until the notifications queued for
// the client's session are written. mcp-go writes notifications from a
// goroutine and responses directly, so without this a call's last
// progress notification could reach the client after its result, which
// MCP 2025-11-25 ("Progress") does not allow.
func flushNotifications(ctx context.Context) {
	s := server.ClientSessionFromContext(ctx)
	if s == nil {
		return
	}
	ch := s.NotificationChannel()
	deadline := time.Now().Add(100 * time.Millisecond)
	for len(ch) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	// The writer has taken the last one off the queue; let it write.
	time.Sleep(time.Millisecond)
}

// forwardTool sends the call to the upstream. It runs inside the
// pipeline (the server's tool middleware), after every check.
func (p *Proxy) forwardTool(r *route) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		params := map[string]any{"name": r.tool}
		if req.Params.Arguments != nil {
			params["arguments"] = req.Params.Arguments
		}
		// The retry of a multi-round-trip request (MCP 2026-07-28,
		// SEP-2322) goes to the upstream that asked, as it was sent:
		// requestState is opaque to agentmesh.
		if req.Params.InputResponses != nil {
			params["inputResponses"] = req.Params.InputResponses
		}
		if req.Params.RequestState != "" {
			params["requestState"] = req.Params.RequestState
		}
		// Every forwarded call carries a progress token of ours: the
		// upstream's progress keeps the call alive (see upstream.call) and
		// reaches the client under its own token if it asked for progress.
		meta := map[string]any{}
		t := &progressTarget{ctx: ctx, alive: make(chan struct{}, 1)}
		if m := req.Params.Meta; m != nil {
			for k, v := range m.AdditionalFields {
				// Keys under io.modelcontextprotocol/ describe this hop
				// (protocol version, client capabilities of the
				// 2026-07-28 revision): not the upstream's.
				if !strings.HasPrefix(k, "io.modelcontextprotocol/") {
					meta[k] = v
				}
			}
			t.token = m.ProgressToken
		}
		ours := fmt.Sprintf("agentmesh-%d", p.tokens.Add(1))
		p.progress.Store(ours, t)
		defer func() {
			p.progress.Delete(ours)
			if t.sent.Load() > 0 {
				flushNotifications(ctx)
			}
		}()
		meta["progressToken"] = ours
		// The upstream's spans join the trace under this call's tool span
		// (W3C Trace Context in _meta, the MCP convention), replacing the
		// client's traceparent when agentmesh traces.
		governance.InjectTraceParent(ctx, meta)
		params["_meta"] = meta
		if bridgesInput(ctx, r.up) {
			// The upstream's requests go to the round, not this request.
			return p.roundCall(ctx, r, req, params, t.alive)
		}
		defer r.up.begin(ctx, r.exposed)()
		if p.wantsTask(ctx, req) {
			return p.startTask(ctx, r, req, params, t.alive)
		}
		raw, err := r.up.callAlive(ctx, "tools/call", params, t.alive)
		if err != nil {
			return nil, err
		}
		res, err := decodeCallToolResult(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %s sent a malformed tools/call result: %v", r.up.cfg.Name, err)
		}
		return res, nil
	}
}

// forwardProgress relays an upstream's notifications/progress to the
// client that asked for it, under the client's own token.
func (p *Proxy) forwardProgress(fields map[string]any) {
	tok, ok := fields["progressToken"].(string)
	if !ok {
		return
	}
	v, ok := p.progress.Load(tok)
	if !ok || p.srv == nil {
		return
	}
	t := v.(*progressTarget)
	select {
	case t.alive <- struct{}{}:
	default:
	}
	if t.token == nil {
		return // the client did not ask for progress
	}
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		out[k] = v
	}
	out["progressToken"] = t.token
	if p.srv.SendNotificationToClient(t.ctx, "notifications/progress", out) == nil {
		t.sent.Add(1)
	}
}

// resourceTarget is the scope target of a resource: the URI escaped into
// one component, so "mcp:<upstream>/*" covers every resource.
func resourceTarget(upstream, uri string) string {
	return upstream + "/" + url.PathEscape(uri)
}

// decodeCallToolResult decodes a tools/call result in one pass
// (mcp.ParseCallToolResult decodes it twice). A result must have content,
// unless it asks for more input (MCP 2026-07-28, SEP-2322).
func decodeCallToolResult(raw json.RawMessage) (*mcp.CallToolResult, error) {
	var res mcp.CallToolResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, err
	}
	if res.Content == nil && res.ResultType != mcp.ResultTypeInputRequired {
		// Content may be an empty array, which decodes to nil too.
		var probe struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &probe) != nil || len(probe.Content) == 0 || string(probe.Content) == "null" {
			return nil, fmt.Errorf("content is missing")
		}
		res.Content = []mcp.Content{}
	}
	// Only agentmesh marks a result as an accepted task (tasks.go).
	if res.Meta != nil {
		delete(res.Meta.AdditionalFields, taskMarker)
	}
	return &res, nil
}

package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// inflight is one client call being served by an upstream: the context
// carries the client's session.
type inflight struct {
	ctx  context.Context
	tool string // the exposed name
}

// begin records a call in progress; the returned func ends it.
func (u *upstream) begin(ctx context.Context, tool string) func() {
	c := &inflight{ctx: ctx, tool: tool}
	u.callsMu.Lock()
	u.calls = append(u.calls, c)
	u.callsMu.Unlock()
	return func() {
		u.callsMu.Lock()
		defer u.callsMu.Unlock()
		if i := slices.Index(u.calls, c); i >= 0 {
			u.calls = slices.Delete(u.calls, i, i+1)
		}
	}
}

func (u *upstream) newestCall() *inflight {
	u.callsMu.Lock()
	defer u.callsMu.Unlock()
	if len(u.calls) == 0 {
		return nil
	}
	return u.calls[len(u.calls)-1]
}

// answer handles a request the upstream sends us (MCP 2025-11-25, "Client
// Features"). ping is answered; elicitation/create and
// sampling/createMessage are relayed to the client of the newest call in
// progress on this upstream (over stdio a request carries no reference to
// the call it belongs to), and recorded in the audit log; anything else,
// and any request while no call is in progress, is refused.
func (u *upstream) answer(_ context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	fail := func(code int, format string, args ...any) (*transport.JSONRPCResponse, error) {
		return transport.NewJSONRPCErrorResponse(req.ID, code, fmt.Sprintf(format, args...), nil), nil
	}
	switch req.Method {
	case "ping":
		return transport.NewJSONRPCResultResponse(req.ID, json.RawMessage(`{}`)), nil
	case string(mcp.MethodElicitationCreate), string(mcp.MethodSamplingCreateMessage):
	default:
		return fail(mcp.METHOD_NOT_FOUND, "agentmesh does not relay %s requests from upstream servers", req.Method)
	}
	call := u.newestCall()
	if call == nil {
		u.p.recordRequest(u, "", req.Method, "refused: no client call in progress")
		return fail(mcp.INVALID_REQUEST, "agentmesh relays %s only during a client's call to this server", req.Method)
	}
	raw, err := json.Marshal(req.Params)
	if err != nil {
		return fail(mcp.INVALID_PARAMS, "%s: %v", req.Method, err)
	}
	result, err := u.p.relay(call.ctx, req.Method, raw)
	if err != nil {
		u.p.recordRequest(u, call.tool, req.Method, "failed: "+err.Error())
		return fail(mcp.INTERNAL_ERROR, "%s could not be relayed to the client: %v", req.Method, err)
	}
	u.p.recordRequest(u, call.tool, req.Method, "relayed")
	return transport.NewJSONRPCResultResponse(req.ID, result), nil
}

// relay sends an upstream's elicitation or sampling request to the client
// session in ctx, if that client declared the capability.
func (p *Proxy) relay(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok {
		return nil, errors.New("the client's session is gone")
	}
	caps := s.GetClientCapabilities()
	var res any
	var err error
	switch method {
	case string(mcp.MethodElicitationCreate):
		if caps.Elicitation == nil {
			return nil, errors.New("the client does not support elicitation")
		}
		var req mcp.ElicitationRequest
		if err := json.Unmarshal(params, &req.Params); err != nil {
			return nil, fmt.Errorf("malformed elicitation request: %w", err)
		}
		res, err = p.srv.RequestElicitation(ctx, req)
	default:
		if caps.Sampling == nil {
			return nil, errors.New("the client does not support sampling")
		}
		var req mcp.CreateMessageRequest
		if err := json.Unmarshal(params, &req.CreateMessageParams); err != nil {
			return nil, fmt.Errorf("malformed sampling request: %w", err)
		}
		res, err = p.srv.RequestSampling(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// recordRequest appends an upstream_request entry: which upstream asked
// the user or the model for what, during which call, and what became of
// it. The request's content is not logged (it goes to the user).
func (p *Proxy) recordRequest(u *upstream, tool, method, outcome string) {
	if p.opts.Pins == nil || p.opts.Pins.Log == nil {
		return
	}
	details, _ := json.Marshal(map[string]string{"method": method, "outcome": outcome})
	_, err := p.opts.Pins.Log.Append(context.Background(), audit.Entry{
		Agent: p.opts.Pins.Agent, Action: audit.ActionUpstreamRequest, Tool: tool, Upstream: u.cfg.Name, Details: details,
	}, nil)
	if err != nil {
		p.warnf("upstream %s: recording its %s request: %v", u.cfg.Name, method, err)
	}
}

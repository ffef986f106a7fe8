package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

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
	// notified is set when a log message was sent to the client for this
	// call: it must be written before the call's result.
	notified atomic.Bool
	// round, for a 2026-07-28 client's call, takes the upstream's
	// requests instead of the client's session (rounds.go).
	round *round
}

// begin records a call in progress; the returned func ends it.
func (u *upstream) begin(ctx context.Context, tool string) func() {
	return u.beginRound(ctx, tool, nil)
}

// beginRound is begin for a call whose upstream requests go to rd, when
// not nil (rounds.go).
func (u *upstream) beginRound(ctx context.Context, tool string, rd *round) func() {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern && info.LogLevel != "" {
		u.p.lowerLevel(u, string(info.LogLevel))
	}
	c := &inflight{ctx: ctx, tool: tool, round: rd}
	u.callsMu.Lock()
	u.calls = append(u.calls, c)
	u.callsMu.Unlock()
	return func() {
		u.callsMu.Lock()
		if i := slices.Index(u.calls, c); i >= 0 {
			u.calls = slices.Delete(u.calls, i, i+1)
		}
		u.callsMu.Unlock()
		if c.notified.Load() {
			flushNotifications(ctx)
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
	// The params as the upstream wrote them (stdio upstreams), else as
	// the transport decoded them.
	raw, ok := u.takeRawRequest(req.ID)
	if !ok {
		var err error
		if raw, err = json.Marshal(req.Params); err != nil {
			return fail(mcp.INVALID_PARAMS, "%s: %v", req.Method, err)
		}
	}
	call := u.newestCall()
	if call == nil {
		u.p.recordRequest(u, "", req.Method, "refused: no client call in progress")
		return fail(mcp.INVALID_REQUEST, "agentmesh relays %s only during a client's call to this server", req.Method)
	}
	var result json.RawMessage
	var err error
	if call.round != nil {
		result, err = call.round.ask(req.Method, raw)
	} else {
		result, err = u.p.relay(call.ctx, req.Method, raw)
	}
	if err != nil {
		u.p.recordRequest(u, call.tool, req.Method, "failed: "+err.Error())
		return fail(mcp.INTERNAL_ERROR, "%s could not be relayed to the client: %v", req.Method, err)
	}
	u.p.recordRequest(u, call.tool, req.Method, "relayed")
	return transport.NewJSONRPCResultResponse(req.ID, result), nil
}

// observe sees every line a stdio upstream writes, before the transport
// decodes it, and keeps the raw params of the requests agentmesh relays,
// so that they reach the client byte for byte (the transport decodes
// params into maps, which would reorder the members of an elicitation's
// requestedSchema, and so the fields of the user's form).
func (u *upstream) observe(line []byte) {
	if !bytes.Contains(line, []byte(`"method"`)) {
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(line, &m) != nil || len(m.ID) == 0 {
		return
	}
	switch m.Method {
	case string(mcp.MethodElicitationCreate), string(mcp.MethodSamplingCreateMessage):
		u.rawRequests.Store(compactID(m.ID), m.Params)
	}
}

func (u *upstream) takeRawRequest(id mcp.RequestId) (json.RawMessage, bool) {
	b, err := json.Marshal(id)
	if err != nil {
		return nil, false
	}
	v, ok := u.rawRequests.LoadAndDelete(compactID(b))
	if !ok || v.(json.RawMessage) == nil {
		return nil, false
	}
	return v.(json.RawMessage), true
}

func compactID(id []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		return string(id)
	}
	return b.String()
}

// relays are the upstream requests being relayed to clients. Each gets a
// key that travels in the typed request mcp-go sends; Wire swaps the
// request's params for the upstream's raw ones on the way out, and keeps
// the client's raw result on the way back.
type relays struct {
	next  atomic.Int64
	slots sync.Map // key → *relaySlot
}

type relaySlot struct {
	params json.RawMessage
	mu     sync.Mutex
	result json.RawMessage
}

// relayMarker names the key agentmesh puts in a relayed request (in
// _meta of an elicitation, in metadata of a sampling request); Wire
// replaces the whole params, marker included.
const relayMarker = "io.agentmesh/relay"

// relay sends an upstream's elicitation or sampling request to the client
// session in ctx, if that client declared the capability, and returns the
// client's result as it wrote it. Only what mcp-go needs to send the
// request is decoded; the params the client sees are the upstream's own.
func (p *Proxy) relay(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok {
		return nil, errors.New("the client's session is gone")
	}
	key := fmt.Sprintf("r%d", p.relays.next.Add(1))
	slot := &relaySlot{params: params}
	p.relays.slots.Store(key, slot)
	defer p.relays.slots.Delete(key)
	caps := s.GetClientCapabilities()
	var res any
	var err error
	switch method {
	case string(mcp.MethodElicitationCreate):
		if caps.Elicitation == nil {
			return nil, errors.New("the client does not support elicitation")
		}
		var req mcp.ElicitationRequest
		var schema struct {
			RequestedSchema json.RawMessage `json:"requestedSchema"`
		}
		if err := json.Unmarshal(params, &req.Params); err != nil {
			return nil, fmt.Errorf("malformed elicitation request: %w", err)
		}
		if json.Unmarshal(params, &schema) == nil && len(schema.RequestedSchema) > 0 {
			req.Params.RequestedSchema = schema.RequestedSchema
		}
		if req.Params.Meta == nil {
			req.Params.Meta = &mcp.Meta{}
		}
		if req.Params.Meta.AdditionalFields == nil {
			req.Params.Meta.AdditionalFields = map[string]any{}
		}
		req.Params.Meta.AdditionalFields[relayMarker] = key
		res, err = p.srv.RequestElicitation(ctx, req)
	default:
		if caps.Sampling == nil {
			return nil, errors.New("the client does not support sampling")
		}
		var req mcp.CreateMessageRequest
		if err := json.Unmarshal(params, &req.CreateMessageParams); err != nil {
			return nil, fmt.Errorf("malformed sampling request: %w", err)
		}
		req.Metadata = map[string]any{relayMarker: key}
		res, err = p.srv.RequestSampling(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	slot.mu.Lock()
	raw := slot.result
	slot.mu.Unlock()
	if raw != nil {
		return raw, nil
	}
	return json.Marshal(res)
}

// recordRequest appends an upstream_request entry: which upstream asked
// the user or the model for what, during which call, and what became of
// it. The request's content is not logged (it goes to the user).
func (p *Proxy) recordRequest(u *upstream, tool, method, outcome string) {
	if p.opts.Record == nil {
		return
	}
	details, _ := json.Marshal(map[string]string{"method": method, "outcome": outcome})
	err := p.opts.Record(context.Background(), audit.Entry{
		Agent: p.opts.Agent, Action: audit.ActionUpstreamRequest, Tool: tool, Upstream: u.cfg.Name, Details: details,
	})
	if err != nil {
		p.warnf("upstream %s: recording its %s request: %v", u.cfg.Name, method, err)
	}
}

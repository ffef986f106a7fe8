package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Rounds bridge the two protocol revisions' ways of asking the client for
// input during a call. A 2025-11-25 upstream sends elicitation/create or
// sampling/createMessage while its tools/call is in progress; a client of
// the 2026-07-28 revision takes no server-initiated requests, so the call's
// answer to it is an input_required result (SEP-2322) carrying the
// upstream's request, with a requestState naming the round. The upstream's
// call stays in progress, detached from the client's request; the client's
// retry with inputResponses and that requestState delivers the answer to
// the upstream and waits for its result (or its next request). Each retry
// is a tools/call of its own, governed and audited like any other; the
// relayed request is recorded as for a 2025-11-25 client (upstream_request).
type round struct {
	key  string
	tool string // the exposed name
	// what the client declared it can answer
	elicit, sample bool
	asks           chan *roundAsk
	done           chan roundDone // buffered: the upstream's answer to the call
	cancel         context.CancelFunc

	mu      sync.Mutex
	pending *roundAsk // sent to the client, awaiting its retry
}

type roundAsk struct {
	method string
	params json.RawMessage
	reply  chan json.RawMessage // buffered; the client's raw answer
}

type roundDone struct {
	raw json.RawMessage
	err error
}

// roundPrefix starts the requestState of a round; roundInput is the key of
// the one input request a round's result carries.
const (
	roundPrefix = "agentmesh-round:"
	roundInput  = "upstream"
)

// roundWait bounds how long an upstream's request waits for the client's
// retry, and how long a finished round is remembered.
var roundWait = 5 * time.Minute

// bridgesInput says a call must be bridged: a 2026-07-28 client that can
// answer elicitation or sampling, calling a 2025-11-25 upstream. (A client
// that can answer neither keeps the direct path: the upstream's request is
// refused, as relay refuses it.)
func bridgesInput(ctx context.Context, u *upstream) bool {
	info := server.RequestProtocolInfoFromContext(ctx)
	if info == nil || !info.Modern || u.isModern() {
		return false
	}
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok {
		return false
	}
	caps := s.GetClientCapabilities()
	return caps.Elicitation != nil || caps.Sampling != nil
}

// roundCall forwards a 2026-07-28 client's call to a 2025-11-25 upstream:
// a new call starts a round, a retry naming a round answers it.
func (p *Proxy) roundCall(ctx context.Context, r *route, req mcp.CallToolRequest, params map[string]any, alive chan struct{}) (*mcp.CallToolResult, error) {
	var rd *round
	if state := req.Params.RequestState; strings.HasPrefix(state, roundPrefix) {
		v, ok := p.rounds.Load(state)
		if !ok || v.(*round).tool != r.exposed {
			return nil, errors.New("the requestState names no call of this tool in progress (it ended, or its wait expired)")
		}
		rd = v.(*round)
		rd.mu.Lock()
		ask := rd.pending
		rd.pending = nil
		rd.mu.Unlock()
		if ask == nil {
			return nil, errors.New("this round's input was answered already")
		}
		resp, ok := req.Params.InputResponses[roundInput]
		if !ok {
			ask.reply <- nil
			return nil, fmt.Errorf("the retry has no inputResponses[%q]; the upstream's request was refused", roundInput)
		}
		raw, err := json.Marshal(resp)
		if err != nil {
			ask.reply <- nil
			return nil, err
		}
		ask.reply <- raw
	} else {
		rd = &round{key: roundPrefix + randomKey(), tool: r.exposed, asks: make(chan *roundAsk), done: make(chan roundDone, 1)}
		if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
			caps := s.GetClientCapabilities()
			rd.elicit, rd.sample = caps.Elicitation != nil, caps.Sampling != nil
		}
		p.rounds.Store(rd.key, rd)
		delete(params, "inputResponses")
		delete(params, "requestState")
		// The upstream's call outlives this request: the client answers
		// in a new one.
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rd.cancel = cancel
		go func() {
			defer cancel()
			end := r.up.beginRound(rctx, r.exposed, rd)
			raw, err := r.up.callAlive(rctx, "tools/call", params, alive)
			end()
			rd.done <- roundDone{raw, err}
			time.AfterFunc(roundWait, func() { p.rounds.Delete(rd.key) })
		}()
	}
	return p.awaitRound(ctx, rd)
}

// awaitRound returns the upstream's result, or the input_required result
// carrying its next request.
func (p *Proxy) awaitRound(ctx context.Context, rd *round) (*mcp.CallToolResult, error) {
	select {
	case d := <-rd.done:
		p.rounds.Delete(rd.key)
		if d.err != nil {
			return nil, d.err
		}
		return decodeCallToolResult(d.raw)
	case ask := <-rd.asks:
		b := server.NewInputRequestBuilder(rd.key)
		switch ask.method {
		case string(mcp.MethodElicitationCreate):
			var ep mcp.ElicitationParams
			if err := json.Unmarshal(ask.params, &ep); err != nil {
				ask.reply <- nil
				return nil, fmt.Errorf("malformed elicitation request from the upstream: %v", err)
			}
			var schema struct {
				RequestedSchema json.RawMessage `json:"requestedSchema"`
			}
			if json.Unmarshal(ask.params, &schema) == nil && len(schema.RequestedSchema) > 0 {
				ep.RequestedSchema = schema.RequestedSchema
			}
			b.Elicit(roundInput, ep)
		default:
			var sp mcp.CreateMessageParams
			if err := json.Unmarshal(ask.params, &sp); err != nil {
				ask.reply <- nil
				return nil, fmt.Errorf("malformed sampling request from the upstream: %v", err)
			}
			b.Sample(roundInput, sp)
		}
		rd.mu.Lock()
		rd.pending = ask
		rd.mu.Unlock()
		return b.ToolResult(), nil
	case <-ctx.Done():
		// The client gave up waiting: so does the upstream's call.
		rd.cancel()
		p.rounds.Delete(rd.key)
		return nil, ctx.Err()
	}
}

// ask hands an upstream's request to the round's client and waits for the
// answer its retry brings.
func (rd *round) ask(method string, params json.RawMessage) (json.RawMessage, error) {
	if method == string(mcp.MethodElicitationCreate) && !rd.elicit || method == string(mcp.MethodSamplingCreateMessage) && !rd.sample {
		return nil, fmt.Errorf("the client does not support %s", method)
	}
	a := &roundAsk{method: method, params: params, reply: make(chan json.RawMessage, 1)}
	t := time.NewTimer(roundWait)
	defer t.Stop()
	select {
	case rd.asks <- a:
	case <-t.C:
		return nil, errors.New("the client's call is no longer waiting")
	}
	select {
	case raw := <-a.reply:
		if raw == nil {
			return nil, errors.New("the client's retry did not answer it")
		}
		return raw, nil
	case <-t.C:
		rd.mu.Lock()
		if rd.pending == a {
			rd.pending = nil
		}
		rd.mu.Unlock()
		return nil, fmt.Errorf("the client did not answer within %s", roundWait)
	}
}

func randomKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

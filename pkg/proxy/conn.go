package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/lineio"
)

// ProtocolVersion is the MCP revision agentmesh speaks to upstreams: the
// initialize handshake of 2025-11-25, which every current server accepts.
const ProtocolVersion = "2025-11-25"

// MaxMessageBytes bounds one message from an upstream's stdout.
const MaxMessageBytes = 16 << 20

// conn is one initialized session with an upstream.
type conn struct {
	t      transport.Interface
	proc   *process      // nil for HTTP upstreams
	done   chan struct{} // closed when the session is over (see end)
	ended  sync.Once
	ids    atomic.Int64
	server serverInfo
	// modern is set for an upstream that speaks only MCP 2026-07-28 (no
	// initialize): every request then carries the protocol version, the
	// client's identity and capabilities in _meta (SEP-2575), and over
	// HTTP the standard headers.
	modern bool
	client map[string]any // clientInfo, for modern requests
	// logLevel, if set, is the log level modern requests ask for.
	logLevel func(ctx context.Context) string
}

// ModernProtocolVersion is the revision agentmesh falls back to for an
// upstream that refuses initialize.
const ModernProtocolVersion = "2026-07-28"

// clientCapabilities are what agentmesh declares to upstreams: elicitation
// and sampling are relayed to the client whose call is in progress
// (requests.go); roots are not offered, so a server keeps the directories
// it was started with.
func clientCapabilities() map[string]any {
	return map[string]any{"elicitation": map[string]any{}, "sampling": map[string]any{}}
}

// end marks the session over: the process exited, or an HTTP upstream
// terminated the session (404). The supervisor then starts a new one.
func (c *conn) end() { c.ended.Do(func() { close(c.done) }) }

// serverInfo is what the upstream said about itself in initialize.
type serverInfo struct {
	ProtocolVersion string       `json:"protocolVersion"`
	Capabilities    capabilities `json:"capabilities"`
	ServerInfo      struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"serverInfo"`
}

// capabilities are the server capabilities of MCP 2025-11-25 ("Lifecycle:
// Capability Negotiation") that agentmesh forwards; an absent member is
// nil.
type capabilities struct {
	Tools     *struct{} `json:"tools"`
	Resources *struct {
		Subscribe bool `json:"subscribe"`
	} `json:"resources"`
	Prompts     *struct{}       `json:"prompts"`
	Logging     *struct{}       `json:"logging"`
	Completions *struct{}       `json:"completions"`
	Tasks       json.RawMessage `json:"tasks"`
}

// dial starts (stdio) or connects to (HTTP) an upstream and performs the
// initialize handshake.
func dial(ctx context.Context, u config.Upstream, version string, stderr io.Writer, onNotify func(mcp.JSONRPCNotification), onRequest transport.RequestHandler, observe func([]byte), warnf func(string, ...any)) (*conn, error) {
	c := &conn{done: make(chan struct{})}
	if u.Command != "" {
		p, err := startProcess(u, stderr)
		if err != nil {
			return nil, err
		}
		c.proc = p
		out := lineio.NewLimiter(p.stdout, MaxMessageBytes)
		out.OnOversize = func(n int) {
			warnf("upstream %s sent a message of over %d bytes (%d); it was discarded", u.Name, MaxMessageBytes, n)
		}
		t := transport.NewIO(NewLineMapper(out, func(line []byte) []byte { observe(line); return line }), p.stdin, nil)
		t.SetRequestHandler(onRequest)
		c.t = t
		go func() {
			<-p.exited
			c.end()
		}()
	} else {
		// Secret references were resolved when the server started
		// (config.ResolveSecrets).
		headers := map[string]string{}
		for k, v := range u.Headers {
			headers[k] = v
		}
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		t, err := transport.NewStreamableHTTP(u.URL, transport.WithHTTPHeaders(headers), transport.WithContinuousListening(),
			transport.WithHTTPBasicClient(&http.Client{Timeout: 0}), transport.WithHTTPLogger(logger))
		if err != nil {
			return nil, fmt.Errorf("url %s: %w", u.URL, err)
		}
		t.SetRequestHandler(onRequest)
		c.t = t
	}
	c.t.SetNotificationHandler(onNotify)
	if err := c.t.Start(ctx); err != nil {
		c.close()
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c.client = map[string]any{"name": "agentmesh", "version": version}
	raw, err := c.request(hctx, "initialize", map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    clientCapabilities(),
		"clientInfo":      c.client,
	})
	var re *rpcError
	if errors.As(err, &re) {
		// A server of the 2026-07-28 revision alone has no initialize:
		// ask it with server/discover instead.
		if derr := c.discover(hctx); derr == nil {
			return c, nil
		} else {
			err = fmt.Errorf("%w; server/discover (MCP %s) failed too: %v", err, ModernProtocolVersion, derr)
		}
	}
	if err != nil {
		c.close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if err := json.Unmarshal(raw, &c.server); err != nil {
		c.close()
		return nil, fmt.Errorf("initialize: malformed result: %w", err)
	}
	if h, ok := c.t.(transport.HTTPConnection); ok {
		h.SetProtocolVersion(c.server.ProtocolVersion)
	}
	if err := c.t.SendNotification(hctx, mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: "notifications/initialized"}}); err != nil {
		c.close()
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	return c, nil
}

// startTimeout bounds starting an upstream and its initialize handshake.
var startTimeout = 30 * time.Second

// rpcError is a JSON-RPC error an upstream answered with.
type rpcError struct {
	Method  string
	Code    int
	Message string
}

func (e *rpcError) Error() string {
	return fmt.Sprintf("%s failed with JSON-RPC error %d: %s", e.Method, e.Code, e.Message)
}

// errSessionOver is a request's error when the upstream went away.
var errSessionOver = errors.New("the upstream connection closed")

// request sends one request and waits for its response. When ctx ends
// first, the upstream is told with notifications/cancelled (MCP
// 2025-11-25, "Cancellation").
func (c *conn) request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	return c.requestID(ctx, c.ids.Add(1), method, params)
}

func (c *conn) requestID(ctx context.Context, id int64, method string, params any) (json.RawMessage, error) {
	req := transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Method: method, Params: params}
	if c.modern {
		c.modernize(ctx, &req)
	}
	resp, err := c.t.SendRequest(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			reason := "cancelled by the client"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(context.Cause(ctx), errTimedOut) {
				reason = "timed out"
			}
			c.cancel(id, reason)
			return nil, ctx.Err()
		}
		if errors.Is(err, transport.ErrTransportClosed) {
			return nil, errSessionOver
		}
		if errors.Is(err, transport.ErrSessionTerminated) {
			c.end() // the upstream forgot us: a new session is needed
			return nil, errSessionOver
		}
		return nil, err
	}
	if resp.Error != nil {
		return nil, &rpcError{Method: method, Code: resp.Error.Code, Message: resp.Error.Message}
	}
	if len(resp.Result) == 0 {
		return nil, fmt.Errorf("%s: the response has no result", method)
	}
	return resp.Result, nil
}

// cancel tells the upstream that request id is no longer wanted.
func (c *conn) cancel(id int64, reason string) {
	ctx, done := context.WithTimeout(context.Background(), 2*time.Second)
	defer done()
	c.t.SendNotification(ctx, mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
		Method: "notifications/cancelled",
		Params: mcp.NotificationParams{AdditionalFields: map[string]any{"requestId": id, "reason": reason}},
	}})
}

// close ends the session: for stdio, stdin is closed first so the server
// can exit cleanly.
func (c *conn) close() {
	if c.proc != nil {
		c.proc.stop(3 * time.Second)
		c.t.Close()
		return
	}
	if c.t != nil {
		c.t.Close()
	}
	c.end()
}

// discover sets the session up in MCP 2026-07-28: server/discover says
// what the server supports (SEP-2575); there is no initialized
// notification and, over HTTP, no session.
func (c *conn) discover(ctx context.Context) error {
	c.modern = true
	if h, ok := c.t.(transport.HTTPConnection); ok {
		h.SetProtocolVersion(ModernProtocolVersion)
	}
	raw, err := c.request(ctx, string(mcp.MethodServerDiscover), map[string]any{})
	if err != nil {
		c.modern = false
		return err
	}
	var d struct {
		SupportedVersions []string     `json:"supportedVersions"`
		Capabilities      capabilities `json:"capabilities"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		c.modern = false
		return fmt.Errorf("malformed result: %w", err)
	}
	if !slices.Contains(d.SupportedVersions, ModernProtocolVersion) {
		c.modern = false
		return fmt.Errorf("the server supports %v, not %s", d.SupportedVersions, ModernProtocolVersion)
	}
	c.server.ProtocolVersion = ModernProtocolVersion
	c.server.Capabilities = d.Capabilities
	return nil
}

// modernize adds to a request what MCP 2026-07-28 wants on every one: the
// protocol version, client info and capabilities in _meta (and the log
// level wanted, if any), and over HTTP the Mcp-Method and Mcp-Name headers.
func (c *conn) modernize(ctx context.Context, req *transport.JSONRPCRequest) {
	params := map[string]any{}
	if m, ok := req.Params.(map[string]any); ok {
		for k, v := range m {
			params[k] = v
		}
	}
	meta := map[string]any{}
	if m, ok := params["_meta"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	meta[mcp.MetaKeyProtocolVersion] = ModernProtocolVersion
	meta[mcp.MetaKeyClientInfo] = c.client
	meta[mcp.MetaKeyClientCapabilities] = clientCapabilities()
	if c.logLevel != nil {
		if l := c.logLevel(ctx); l != "" {
			meta[mcp.MetaKeyLogLevel] = l
		}
	}
	params["_meta"] = meta
	req.Params = params
	if _, ok := c.t.(transport.HTTPConnection); !ok {
		return
	}
	h := http.Header{}
	h.Set(mcp.HeaderMethod, req.Method)
	if mcp.MethodRequiresNameHeader(mcp.MCPMethod(req.Method)) {
		if raw, err := json.Marshal(params); err == nil {
			if name, ok := mcp.ExtractHeaderName(mcp.MCPMethod(req.Method), raw); ok {
				if v, ok := mcp.EncodeHeaderValue(name); ok {
					h.Set(mcp.HeaderName, v)
				}
			}
		}
	}
	req.Header = h
}

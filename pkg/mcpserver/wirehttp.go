package mcpserver

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/proxy"
)

// wireHandler puts a proxy.Wire between mcp-go's streamable HTTP server
// and each client session (MCP 2025-11-25, "Transports: Streamable HTTP"):
// the client's POSTed messages are seen before mcp-go, and every message
// mcp-go sends — a JSON response body or the events of an SSE stream, on a
// POST or on the GET stream — passes Wire.ToClient. A request without a
// session (initialize, or a stateless 2026-07-28 request) gets a wire of
// its own.
type wireHandler struct {
	next  http.Handler
	proxy *proxy.Proxy
	mu    sync.Mutex
	wires map[string]*proxy.Wire // by Mcp-Session-Id
}

func newWireHandler(next http.Handler, p *proxy.Proxy) *wireHandler {
	h := &wireHandler{next: next, proxy: p, wires: map[string]*proxy.Wire{}}
	// A session that ends without DELETE (idle, or the server closing it)
	// takes its wire with it.
	p.OnSessionEnd(func(session string) {
		h.mu.Lock()
		delete(h.wires, session)
		h.mu.Unlock()
	})
	return h
}

// sessions is how many session wires are held.
func (h *wireHandler) sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.wires)
}

func (h *wireHandler) wire(session string) *proxy.Wire {
	if session == "" {
		return h.proxy.NewWire("")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.wires[session]
	if w == nil {
		w = h.proxy.NewWire(session)
		h.wires[session] = w
	}
	return w
}

func (h *wireHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	session := r.Header.Get("Mcp-Session-Id")
	if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		// 2026-07-28 has no sessions and the header is ignored: keying a
		// wire on it would keep one for every id a client makes up.
		session = ""
	}
	wire := h.wire(session)
	if r.Method == http.MethodPost && r.Body != nil {
		// httpguard has read the body already, at most http.max_body.
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			http.Error(w, fmt.Sprintf("reading the request body: %v", err), http.StatusBadRequest)
			return
		}
		wire.FromClient(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	ww := &wireWriter{w: w, wire: wire}
	h.next.ServeHTTP(ww, r)
	ww.finish()
	if r.Method == http.MethodDelete && session != "" {
		h.mu.Lock()
		delete(h.wires, session)
		h.mu.Unlock()
	}
}

// wireWriter rewrites what mcp-go writes: an application/json body is
// held until the handler returns and rewritten whole; a text/event-stream
// is rewritten event by event (each "data:" of a complete event); anything
// else passes through.
type wireWriter struct {
	w      http.ResponseWriter
	wire   *proxy.Wire
	mode   int // 0 undecided, 1 json, 2 sse, 3 pass
	status int
	body   bytes.Buffer // json: the body; sse: the incomplete event
}

const (
	modeUndecided = iota
	modeJSON
	modeSSE
	modePass
)

func (ww *wireWriter) Header() http.Header { return ww.w.Header() }

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (ww *wireWriter) Unwrap() http.ResponseWriter { return ww.w }

func (ww *wireWriter) decide() {
	if ww.mode != modeUndecided {
		return
	}
	ct := ww.w.Header().Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		ww.mode = modeJSON
		ww.w.Header().Del("Content-Length")
	case strings.HasPrefix(ct, "text/event-stream"):
		ww.mode = modeSSE
	default:
		ww.mode = modePass
	}
}

func (ww *wireWriter) WriteHeader(code int) {
	ww.decide()
	if ww.mode == modeJSON {
		ww.status = code
		return
	}
	ww.w.WriteHeader(code)
}

func (ww *wireWriter) Write(p []byte) (int, error) {
	ww.decide()
	switch ww.mode {
	case modeJSON:
		return ww.body.Write(p)
	case modeSSE:
		ww.body.Write(p)
		return len(p), ww.events()
	default:
		return ww.w.Write(p)
	}
}

// events writes every complete event buffered so far.
func (ww *wireWriter) events() error {
	for {
		b := ww.body.Bytes()
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			return nil
		}
		event := rewriteEvent(b[:i+2], ww.wire)
		ww.body.Next(i + 2)
		if _, err := ww.w.Write(event); err != nil {
			return err
		}
	}
}

// rewriteEvent passes the JSON-RPC message in an SSE event's data through
// the wire; events without data (priming, comments) are unchanged.
func rewriteEvent(event []byte, wire *proxy.Wire) []byte {
	lines := strings.Split(strings.TrimSuffix(string(event), "\n\n"), "\n")
	var data []string
	var other []string
	for _, l := range lines {
		if d, ok := strings.CutPrefix(l, "data:"); ok {
			data = append(data, strings.TrimPrefix(d, " "))
		} else {
			other = append(other, l)
		}
	}
	msg := strings.Join(data, "\n")
	if strings.TrimSpace(msg) == "" {
		return event
	}
	out := wire.ToClient([]byte(msg))
	if bytes.Equal(out, []byte(msg)) {
		return event
	}
	var b bytes.Buffer
	for _, l := range other {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("data: ")
	b.Write(out)
	b.WriteString("\n\n")
	return b.Bytes()
}

func (ww *wireWriter) Flush() {
	if ww.mode == modeJSON {
		return // written whole by finish
	}
	if f, ok := ww.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish writes a held JSON body (rewritten) and what remains of a stream.
func (ww *wireWriter) finish() {
	switch ww.mode {
	case modeJSON:
		out := ww.body.Bytes()
		if msg := bytes.TrimRight(out, "\n"); len(bytes.TrimSpace(msg)) > 0 {
			rest := out[len(msg):]
			out = append(ww.wire.ToClient(msg), rest...)
		}
		if ww.status != 0 {
			ww.w.WriteHeader(ww.status)
		}
		ww.w.Write(out)
	case modeSSE:
		if ww.body.Len() > 0 {
			ww.w.Write(ww.body.Bytes())
		}
	}
}

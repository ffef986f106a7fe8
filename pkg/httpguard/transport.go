package httpguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// headerSession is the session header of MCP 2025-11-25 (HTTP header
// names are case-insensitive; mcp-go spells it this way).
const headerSession = "Mcp-Session-Id"

// serveEndpoint applies the transport's rules to a request for the MCP
// endpoint, citing MCP 2025-11-25 "Transports: Streamable HTTP" (T) and
// 2026-07-28 (M):
//
//   - GET, POST and DELETE only; anything else 405 with Allow (T: the
//     endpoint supports POST and GET, DELETE ends a session).
//   - POST: Content-Type application/json, else 415 (T "Sending Messages"
//     3: the body is one JSON-RPC message); Accept admitting both
//     application/json and text/event-stream, else 406 (T and M, "Sending
//     Messages" 2); a body over max_body 413, read no further; a body not
//     sent within read_timeout 408.
//   - GET: Accept admitting text/event-stream, else 406 (T "Listening for
//     Messages" 2).
//   - Sessions (stateful 2025-11-25 requests): a request other than
//     initialize without Mcp-Session-Id 400 (T "Session Management" 2), an
//     unknown or ended one 404 (3), for DELETE too; initialize beyond
//     max_sessions 503 with Retry-After.
//
// 2026-07-28 requests (by their Mcp-Protocol-Version header) have no
// sessions: the header is ignored (M "Backward Compatibility"), and GET and
// DELETE go on to mcp-go, which answers them 405 with a JSON-RPC error.
func (g *Guard) serveEndpoint(w http.ResponseWriter, r *http.Request) {
	modern := mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
	session := r.Header.Get(headerSession)
	switch r.Method {
	case http.MethodPost:
		if !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json: the body is one JSON-RPC message")
			return
		}
		if !accepts(r.Header.Values("Accept"), "application/json", "text/event-stream") {
			writeError(w, http.StatusNotAcceptable, "Accept must list both application/json and text/event-stream")
			return
		}
		if !modern && session != "" && !g.o.Sessions.Has(session) {
			writeError(w, http.StatusNotFound, "unknown or ended session: send initialize without Mcp-Session-Id to start a new one")
			return
		}
		body, ok := g.readBody(w, r)
		if !ok {
			return
		}
		if !modern && session == "" {
			method, bodyModern := peekMessage(body)
			if !bodyModern && method != string(mcp.MethodInitialize) {
				writeError(w, http.StatusBadRequest, "Mcp-Session-Id header required: send initialize first, then the session id it returned")
				return
			}
			if !bodyModern && g.o.Sessions.Len() >= g.o.MaxSessions {
				w.Header().Set("Retry-After", strconv.Itoa(g.retryAfter()))
				writeError(w, http.StatusServiceUnavailable, "too many sessions (http.max_sessions): retry later")
				return
			}
		}
	case http.MethodGet:
		if !modern {
			if !accepts(r.Header.Values("Accept"), "text/event-stream") {
				writeError(w, http.StatusNotAcceptable, "Accept must list text/event-stream: GET opens an event stream")
				return
			}
			if !g.liveSession(w, session) {
				return
			}
		}
		// The stream outlives read_timeout: a read deadline passing would
		// cancel the request's context (net/http's background read).
		http.NewResponseController(w).SetReadDeadline(time.Time{})
	case http.MethodDelete:
		if !modern && !g.liveSession(w, session) {
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not supported at the MCP endpoint: use POST, GET or DELETE")
		return
	}
	g.next.ServeHTTP(w, r)
}

// liveSession answers 400 for a missing session id and 404 for an unknown
// one.
func (g *Guard) liveSession(w http.ResponseWriter, session string) bool {
	switch {
	case session == "":
		writeError(w, http.StatusBadRequest, "Mcp-Session-Id header required")
		return false
	case !g.o.Sessions.Has(session):
		writeError(w, http.StatusNotFound, "unknown or ended session: send initialize without Mcp-Session-Id to start a new one")
		return false
	}
	return true
}

// readBody reads a POST body whole, at most max_body bytes, and gives it
// back to the request for mcp-go; reading stops at the limit, so memory
// stays bounded whatever the client sends. A declared Content-Length over
// the limit is refused without reading anything.
func (g *Guard) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := "the request body is over http.max_body (" + strconv.FormatInt(g.o.MaxBody, 10) + " bytes): send smaller messages"
	if r.ContentLength > g.o.MaxBody {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
		return nil, false
	}
	b, err := readAll(http.MaxBytesReader(w, r.Body, g.o.MaxBody), r.ContentLength, g.o.MaxBody)
	r.Body.Close()
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "the request body was not sent within http.read_timeout")
		return nil, false
	case err != nil:
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return nil, false
	}
	// The body is in: a long tool call must not be cancelled by the read
	// deadline passing while it runs.
	http.NewResponseController(w).SetReadDeadline(time.Time{})
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return b, true
}

// readAll reads r whole into a buffer of the declared length, or, for a
// body of unknown length, one that doubles but never beyond limit+1 (the
// byte that shows the body is too long): what a refused body costs stays
// about twice the limit, whatever its size.
func readAll(r io.Reader, declared, limit int64) ([]byte, error) {
	size := int64(512)
	if declared >= 0 {
		size = declared + 1 // room for the EOF read
	}
	b := make([]byte, 0, min(size, limit+1))
	for {
		if len(b) == cap(b) {
			nb := make([]byte, len(b), max(min(2*int64(cap(b)), limit+1), int64(cap(b))+1))
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// peekMessage reads what the session rules need of a message: its method,
// and whether its _meta says 2026-07-28 (a modern client that left out
// the header; mcp-go tells it so).
func peekMessage(body []byte) (method string, modern bool) {
	var m struct {
		Method string `json:"method"`
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil {
		return "", false
	}
	return m.Method, mcp.IsModernProtocol(m.Params.Meta.ProtocolVersion())
}

// retryAfter is when a session may have been swept: the idle sweeper runs
// every half TTL (mcp-go), so at most that, and not over a minute.
func (g *Guard) retryAfter() int {
	s := int(g.o.SessionIdleTTL / 2 / time.Second)
	return min(max(s, 1), 60)
}

// writeError answers with a JSON-RPC error response without an id, as the
// transport allows for HTTP errors (MCP 2025-11-25 "Sending Messages" 4,
// "Security Warning" 1).
func writeError(w http.ResponseWriter, status int, msg string) {
	code := -32600 // Invalid Request
	if status >= 500 {
		code = -32000 // server error
	}
	b, _ := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func quote(s string) string { return strconv.Quote(s) }

package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// headerRecorder is a loopback server that records the headers of every
// request it receives, by path; /redirect?to=URL answers 302 to URL, and
// every other path echoes the request headers back in the body, as
// httpbin's /headers does.
type headerRecorder struct {
	*countingServer
	mu   sync.Mutex
	seen map[string]http.Header
}

func newHeaderRecorder(t *testing.T) *headerRecorder {
	r := &headerRecorder{seen: map[string]http.Header{}}
	r.countingServer = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen[req.URL.Path] = req.Header.Clone()
		r.mu.Unlock()
		if to := req.URL.Query().Get("to"); to != "" {
			http.Redirect(w, req, to, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(req.Header)
	}))
	return r
}

// got returns the headers the request to path carried, and whether one
// arrived.
func (r *headerRecorder) got(path string) (http.Header, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.seen[path]
	return h, ok
}

const (
	injectedToken = "Bearer tok-A-5d1e"
	injectedKey   = "key-A-77c0"
)

// headerTool has: /api/* on server a with injected headers, /public/* on
// a without, and all of server b without.
func headerTool(t *testing.T, a, b *headerRecorder) *Tool {
	return mustNew(t, Options{MaxRedirects: 3, Endpoints: []Endpoint{
		{URL: "http://127.0.0.1:" + a.port() + "/api/*", Methods: []string{"GET", "POST"}, AllowPrivate: true,
			Headers: map[string]string{"authorization": injectedToken, "X-Api-Key": injectedKey}},
		{URL: "http://127.0.0.1:" + a.port() + "/public/*", AllowPrivate: true},
		{URL: "http://127.0.0.1:" + b.port() + "/*", AllowPrivate: true},
	}})
}

func TestInjectedHeadersReachTheEndpoint(t *testing.T) {
	a, b := newHeaderRecorder(t), newHeaderRecorder(t)
	tool := headerTool(t, a, b)
	res, err := call(t, tool, a.URL+"/api/echo", "headers", map[string]any{"X-Trace": "t1"})
	if err != nil {
		t.Fatal(err)
	}
	h, ok := a.got("/api/echo")
	if !ok || h.Get("Authorization") != injectedToken || h.Get("X-Api-Key") != injectedKey || h.Get("X-Trace") != "t1" {
		t.Fatalf("the endpoint received %v", h)
	}
	// The tool returns what the server sent (the echo), and nothing of
	// its own about the request: redacting the echo is the pipeline's
	// job (configured secrets).
	r := structured(t, res)
	for k, v := range r.Headers {
		if strings.Contains(v, "tok-A") || strings.Contains(v, injectedKey) {
			t.Errorf("response header %s carries the injected value", k)
		}
	}
	def, _ := json.Marshal(tool.Definition())
	if !strings.Contains(string(def), "agentmesh adds Authorization, X-Api-Key") || strings.Contains(string(def), "tok-A") || strings.Contains(string(def), injectedKey) {
		t.Errorf("the description names the injected headers, never their values: %s", def)
	}
}

func TestCallerCannotSetAnInjectedHeader(t *testing.T) {
	a, b := newHeaderRecorder(t), newHeaderRecorder(t)
	tool := headerTool(t, a, b)
	for _, name := range []string{"Authorization", "authorization", "X-API-KEY"} {
		_, err := call(t, tool, a.URL+"/api/echo", "headers", map[string]any{name: "Bearer model-chosen"})
		if refusalCheck(err) != "arguments" || !strings.Contains(err.Error(), "is added by agentmesh") {
			t.Errorf("setting %s: %v", name, err)
		}
		if err != nil && (strings.Contains(err.Error(), "tok-A") || strings.Contains(err.Error(), injectedKey)) {
			t.Errorf("the refusal holds an injected value: %v", err)
		}
		if _, err := tool.Access(map[string]any{"url": a.URL + "/api/echo", "headers": map[string]any{name: "x"}}); refusalCheck(err) != "arguments" {
			t.Errorf("Access with %s: %v", name, err)
		}
	}
	if n := a.conns.Load(); n != 0 {
		t.Errorf("a refused call connected %d times", n)
	}
	// Where the endpoint injects nothing, the caller may set it.
	if _, err := call(t, tool, a.URL+"/public/x", "headers", map[string]any{"Authorization": "Bearer model-chosen"}); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.got("/public/x"); h.Get("Authorization") != "Bearer model-chosen" {
		t.Errorf("/public/x received %v", h)
	}
}

// TestInjectedHeadersAndRedirects: every hop gets the headers of the
// endpoint matching its own URL, never the previous hop's.
func TestInjectedHeadersAndRedirects(t *testing.T) {
	a, b := newHeaderRecorder(t), newHeaderRecorder(t)
	tool := headerTool(t, a, b)
	tests := []struct {
		name, start, final string
		srv                *headerRecorder
		wantInjected       bool
		wantTrace          bool // the caller's own header
	}{
		{"cross-origin redirect", a.URL + "/api/r?to=" + b.URL + "/landing", "/landing", b, false, false},
		{"same origin, another endpoint", a.URL + "/api/r2?to=/public/landing", "/public/landing", a, false, true},
		{"same origin, same endpoint", a.URL + "/api/r3?to=/api/landing", "/api/landing", a, true, true},
		{"into the endpoint from elsewhere", b.URL + "/r4?to=" + a.URL + "/api/in", "/api/in", a, true, false},
	}
	for _, tt := range tests {
		res, err := call(t, tool, tt.start, "headers", map[string]any{"X-Trace": "t1"})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r := structured(t, res); r.Redirects != 1 {
			t.Errorf("%s: %d redirects", tt.name, r.Redirects)
		}
		h, ok := tt.srv.got(tt.final)
		if !ok {
			t.Errorf("%s: %s was never requested", tt.name, tt.final)
			continue
		}
		if got := h.Get("Authorization") == injectedToken && h.Get("X-Api-Key") == injectedKey; got != tt.wantInjected {
			t.Errorf("%s: the last hop received injected headers: %v, want %v (%v)", tt.name, got, tt.wantInjected, h)
		}
		if !tt.wantInjected && (h.Get("Authorization") != "" || h.Get("X-Api-Key") != "") {
			t.Errorf("%s: the last hop received %v", tt.name, h)
		}
		if got := h.Get("X-Trace") == "t1"; got != tt.wantTrace {
			t.Errorf("%s: the caller's header carried: %v, want %v", tt.name, got, tt.wantTrace)
		}
	}
	// The first hop of the cross-origin case did get them: the
	// difference above is the redirect rule, not a missing header.
	if h, _ := a.got("/api/r"); h.Get("Authorization") != injectedToken {
		t.Errorf("first hop: %v", h)
	}
}

func TestInjectedHeaderConfiguration(t *testing.T) {
	tests := []struct {
		headers map[string]string
		want    string
	}{
		{map[string]string{"Host": "evil.example"}, `header "Host" is set by the transport`},
		{map[string]string{"proxy-authorization": "x"}, `is set by the transport`},
		{map[string]string{"Bad Name": "x"}, `not a valid header name`},
		{map[string]string{"X-Key": "secret-value\r\nX-Injected: 1"}, `the value has a control character`},
		{map[string]string{"X-Key": "a", "x-key": "b"}, `configured twice`},
	}
	for _, tt := range tests {
		_, err := New(Options{Endpoints: []Endpoint{{URL: "https://api.example.com/*", Headers: tt.headers}}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.headers, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("the error holds the value: %v", err)
		}
	}
}

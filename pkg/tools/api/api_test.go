package api

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/scope"
)

// loopbackAPI is the demo's situation: a stand-in API on loopback,
// allowlisted with allow_private: true.
func loopbackAPI(t testing.TB, maxBytes int64) (*Tool, *countingServer, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/weather", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Set-Cookie", "session=secret")
		w.Header().Set("X-Internal-Trace", "node-7")
		io.WriteString(w, `{"city":"Paris","temp_c":21}`)
	})
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, `{"looks":"like json"}`)
	})
	mux.HandleFunc("/badjson", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		io.WriteString(w, `{"unterminated":`)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `["`+strings.Repeat("a", 100)+`"]`)
	})
	mux.HandleFunc("/binary", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte{0xff, 0xfe, 0x00, 0x01})
	})
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/weather", http.StatusFound)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		json.NewEncoder(w).Encode(map[string]string{
			"method": r.Method, "body": string(b), "x-token": r.Header.Get("X-Token"), "ua": r.UserAgent(),
		})
	})
	mux.HandleFunc("/post-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusSeeOther)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	srv := newCountingServer(t, mux)
	tool := mustNew(t, Options{
		Endpoints: []Endpoint{
			{URL: "http://127.0.0.1:" + srv.port() + "/*", Methods: []string{"GET", "HEAD", "POST"}, AllowPrivate: true},
		},
		MaxResponseBytes: maxBytes,
		MaxRedirects:     2,
		Timeout:          2 * time.Second,
		Resolver:         mapResolver(nil),
		DialControl:      newDialHook(srv.addr()).control,
	})
	return tool, srv, "http://127.0.0.1:" + srv.port()
}

func TestCallLoopbackJSON(t *testing.T) {
	tool, _, base := loopbackAPI(t, 0)
	res, err := call(t, tool, base+"/weather", "expect", "json")
	if err != nil {
		t.Fatal(err)
	}
	r := structured(t, res)
	if r.Status != 200 || r.Body != `{"city":"Paris","temp_c":21}` || r.Truncated {
		t.Fatalf("result %+v", r)
	}
	if r.Headers["content-type"] != "application/json; charset=utf-8" {
		t.Errorf("content-type header missing: %v", r.Headers)
	}
	for _, h := range []string{"set-cookie", "x-internal-trace"} {
		if _, ok := r.Headers[h]; ok {
			t.Errorf("unsafe header %s passed through: %v", h, r.Headers)
		}
	}
	if !strings.HasPrefix(text(res), "HTTP 200 OK\n{\"city\"") {
		t.Errorf("text %q", text(res))
	}
	if res.IsError {
		t.Error("isError set on a 200")
	}
}

func TestCallValidationAndSize(t *testing.T) {
	tool, _, base := loopbackAPI(t, 64)
	tests := []struct {
		path, expect, check string
		truncated           bool
	}{
		{"/weather", "json", "", false},
		{"/text", "json", "response", false},
		{"/text", "", "", false},
		{"/badjson", "json", "response", false},
		{"/big", "", "", true},
		{"/big", "json", "size", false},
		{"/binary", "", "", false},
	}
	for _, tt := range tests {
		extra := []any{}
		if tt.expect != "" {
			extra = append(extra, "expect", tt.expect)
		}
		res, err := call(t, tool, base+tt.path, extra...)
		if got := refusalCheck(err); got != tt.check {
			t.Errorf("%s expect=%q: check %q, want %q", tt.path, tt.expect, got, tt.check)
			continue
		}
		if err != nil {
			continue
		}
		r := structured(t, res)
		if r.Truncated != tt.truncated {
			t.Errorf("%s: truncated=%v, want %v", tt.path, r.Truncated, tt.truncated)
		}
		if r.Truncated && (len(r.Body) != 64 || !strings.Contains(text(res), "[truncated at 64 bytes]")) {
			t.Errorf("%s: truncated body has %d bytes, text %q", tt.path, len(r.Body), text(res))
		}
		if tt.path == "/binary" && (r.Encoding != "base64" || r.Body != "//4AAQ==") {
			t.Errorf("binary body %q encoding %q", r.Body, r.Encoding)
		}
	}
}

func TestCallRedirectWithinAllowlist(t *testing.T) {
	tool, srv, base := loopbackAPI(t, 0)
	res, err := call(t, tool, base+"/start", "expect", "json")
	if err != nil {
		t.Fatal(err)
	}
	r := structured(t, res)
	if r.Status != 200 || r.Redirects != 1 || r.URL != base+"/weather" || !strings.Contains(r.Body, "Paris") {
		t.Fatalf("result %+v", r)
	}
	if n := srv.conns.Load(); n != 2 {
		t.Errorf("%d connections for two hops (no reuse expected)", n)
	}
}

func TestCallMethodsHeadersBody(t *testing.T) {
	tool, _, base := loopbackAPI(t, 0)
	res, err := call(t, tool, base+"/echo", "method", "post", "body", "hello",
		"headers", map[string]any{"X-Token": "t0k", "Content-Type": "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	var echo map[string]string
	if err := json.Unmarshal([]byte(structured(t, res).Body), &echo); err != nil {
		t.Fatal(err)
	}
	if echo["method"] != "POST" || echo["body"] != "hello" || echo["x-token"] != "t0k" || echo["ua"] != defaultUserAgent {
		t.Fatalf("echo %v", echo)
	}
	// 303 after POST: the next hop is a GET without the body.
	res, err = call(t, tool, base+"/post-redirect", "method", "POST", "body", "hello")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(structured(t, res).Body), &echo)
	if echo["method"] != "GET" || echo["body"] != "" {
		t.Fatalf("after 303: %v", echo)
	}
	res, err = call(t, tool, base+"/weather", "method", "HEAD")
	if err != nil || structured(t, res).Body != "" || structured(t, res).Status != 200 {
		t.Fatalf("HEAD: %v %v", res, err)
	}
}

func TestCallArgumentRefusals(t *testing.T) {
	tool, srv, base := loopbackAPI(t, 0)
	tests := []struct {
		name string
		args map[string]any
	}{
		{"missing url", map[string]any{}},
		{"url not a string", map[string]any{"url": 7}},
		{"unknown argument", map[string]any{"url": base + "/echo", "timeout": "1s"}},
		{"method not a string", map[string]any{"url": base + "/echo", "method": 1}},
		{"unknown method", map[string]any{"url": base + "/echo", "method": "BREW"}},
		{"trace", map[string]any{"url": base + "/echo", "method": "TRACE"}},
		{"headers not an object", map[string]any{"url": base + "/echo", "headers": "X: y"}},
		{"header value not a string", map[string]any{"url": base + "/echo", "headers": map[string]any{"X": 1}}},
		{"host header", map[string]any{"url": base + "/echo", "headers": map[string]any{"Host": "api.weather.com"}}},
		{"proxy header", map[string]any{"url": base + "/echo", "headers": map[string]any{"Proxy-Foo": "x"}}},
		{"header injection", map[string]any{"url": base + "/echo", "headers": map[string]any{"X": "a\r\nHost: evil"}}},
		{"bad header name", map[string]any{"url": base + "/echo", "headers": map[string]any{"X Y": "a"}}},
		{"body on GET", map[string]any{"url": base + "/echo", "body": "x"}},
		{"body too big", map[string]any{"url": base + "/echo", "method": "POST", "body": strings.Repeat("x", maxRequestBody+1)}},
		{"bad expect", map[string]any{"url": base + "/echo", "expect": "xml"}},
		{"url too long", map[string]any{"url": base + "/" + strings.Repeat("a", maxURLLen)}},
	}
	for _, tt := range tests {
		_, err := tool.Call(context.Background(), tt.args)
		if got := refusalCheck(err); got != "arguments" {
			t.Errorf("%s: check %q, want arguments", tt.name, got)
		}
		if _, err := tool.Access(tt.args); refusalCheck(err) != "arguments" {
			t.Errorf("%s: Access accepted it: %v", tt.name, err)
		}
	}
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("%d connections for refused calls", n)
	}
}

func TestCallTimeout(t *testing.T) {
	tool, _, base := loopbackAPI(t, 0)
	tool.opts.Timeout = 200 * time.Millisecond
	tool.opts.HeaderTimeout = 200 * time.Millisecond
	start := time.Now()
	_, err := call(t, tool, base+"/slow")
	if got := refusalCheck(err); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("got %q, want a tool error", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %s", d)
	}
}

func TestAccessTarget(t *testing.T) {
	tool := mustNew(t, Options{Endpoints: []Endpoint{{URL: "https://api.weather.com/*"}, {URL: "http://example.com/*"},
		{URL: "http://example.com:8080/*"}, {URL: "http://10.0.0.1/*", AllowPrivate: true}}})
	tests := []struct{ url, want string }{
		{"HTTPS://API.Weather.COM:443/v1/Forecast?q=Paris#frag", "https://api.weather.com/v1/Forecast?q=Paris"},
		{"https://api.weather.com", "https://api.weather.com/"},
		{"http://Example.COM:80/a%20b", "http://example.com/a%20b"},
		{"http://example.com:8080/", "http://example.com:8080/"},
		{"http://10.0.0.1/x", "http://10.0.0.1/x"},
	}
	for _, tt := range tests {
		acc, err := tool.Access(map[string]any{"url": tt.url})
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if acc.Kind != scope.API || acc.Action != scope.Call || acc.Target != tt.want {
			t.Errorf("%s: access %v, want target %s", tt.url, acc, tt.want)
		}
	}
	// Refused before anything else, named for what they are: a
	// special-purpose address, a URL no endpoint allows.
	for url, check := range map[string]string{"http://[2001:DB8::1]:8443/x": "ssrf", "https://api.example.org/": "endpoint", "http://10.0.0.2/": "ssrf"} {
		if _, err := tool.Access(map[string]any{"url": url}); refusalCheck(err) != check {
			t.Errorf("%s: %v, want check %s", url, err, check)
		}
	}
	// The default scope and the tool's allowlist agree on the target.
	res, _ := scope.ParseResource("api:https://api.weather.com/*")
	acc, _ := tool.Access(map[string]any{"url": "https://API.weather.com/v1/x"})
	if !res.Covers(acc.Kind, acc.Target) {
		t.Errorf("default scope does not cover %s", acc.Target)
	}
}

func TestAllowlistMatching(t *testing.T) {
	tool := mustNew(t, Options{Endpoints: []Endpoint{
		{URL: "https://api.weather.com/v1/*", Methods: []string{"get"}},
		{URL: "https://api.weather.com/v2/forecast", Methods: []string{"POST"}},
	}})
	tests := []struct {
		url, method string
		ok          bool
	}{
		{"https://api.weather.com/v1", "GET", true},
		{"https://api.weather.com/v1/forecast?q=1", "GET", true},
		{"https://api.weather.com/v1/forecast", "POST", false},
		{"https://api.weather.com/v10", "GET", false},
		{"https://api.weather.com/v2/forecast", "POST", true},
		{"https://api.weather.com/v2/forecast/x", "POST", false},
		{"https://api.weather.com/v1/forecast/", "GET", false}, // scope patterns refuse trailing slashes
		{"http://api.weather.com/v1/x", "GET", false},
		{"https://api.weather.com:8443/v1/x", "GET", false},
		{"https://api.weather.com.evil.test/v1/x", "GET", false},
		{"https://evil.test/api.weather.com/v1/x", "GET", false},
	}
	for _, tt := range tests {
		if _, ok := tool.Allowed(tt.url, tt.method); ok != tt.ok {
			t.Errorf("Allowed(%s, %s) = %v, want %v", tt.url, tt.method, ok, tt.ok)
		}
	}
}

func TestNewRejectsBadEndpoints(t *testing.T) {
	for _, e := range []Endpoint{
		{URL: "api.weather.com/*"},
		{URL: "https://API.weather.com/*"},
		{URL: "https://api.weather.com:443/*"},
		{URL: "https://*.weather.com/*"},
		{URL: "https://user@api.weather.com/*"},
		{URL: "http://127.1/*"},
		{URL: "http://[::ffff:127.0.0.1]/*"},
		{URL: "https://api.weather.com/*", Methods: []string{"CONNECT"}},
	} {
		if _, err := New(Options{Endpoints: []Endpoint{e}}); err == nil {
			t.Errorf("New accepted endpoint %+v", e)
		}
	}
}

func TestDefinition(t *testing.T) {
	tool := mustNew(t, Options{})
	d := tool.Definition()
	if d.Name != Name || d.InputSchema.Required[0] != "url" {
		t.Fatalf("definition %+v", d)
	}
	for _, p := range []string{"url", "method", "headers", "body", "expect"} {
		if _, ok := d.InputSchema.Properties[p]; !ok {
			t.Errorf("schema lacks %q", p)
		}
	}
}

// TestDescriptionListsEndpoints: the model is told what it may call.
func TestDescriptionListsEndpoints(t *testing.T) {
	tool := mustNew(t, Options{Endpoints: []Endpoint{{URL: "https://api.weather.com/*"}, {URL: "https://hooks.example.com/v1/*", Methods: []string{"POST", "GET"}}}})
	d := tool.Definition()
	for _, want := range []string{"https://api.weather.com/* (GET)", "https://hooks.example.com/v1/* (GET, POST)"} {
		if !strings.Contains(d.Description, want) {
			t.Errorf("description %q lacks %q", d.Description, want)
		}
	}
}

// TestErrorsSayItOnce: a failed lookup names the host once, the URL once,
// and no resolver address.
func TestErrorsSayItOnce(t *testing.T) {
	tool := mustNew(t, Options{Endpoints: []Endpoint{{URL: "https://nowhere.test/*"}},
		Resolver: func(_ context.Context, host string) ([]netip.Addr, error) {
			return nil, &net.DNSError{Err: "no such host", Name: host, Server: "127.0.0.53:53", IsNotFound: true}
		}})
	_, err := call(t, tool, "https://nowhere.test/v1/x")
	msg := err.Error()
	if !strings.Contains(msg, "cannot resolve nowhere.test (no such host)") || strings.Count(msg, "https://nowhere.test/v1/x") != 1 || strings.Contains(msg, "127.0.0.53") {
		t.Fatalf("error = %q", msg)
	}
}

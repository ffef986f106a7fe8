package httpguard

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAccepts(t *testing.T) {
	both := []string{"application/json", "text/event-stream"}
	for _, tt := range []struct {
		header []string
		types  []string
		want   bool
	}{
		{nil, both, false},
		{[]string{"application/json, text/event-stream"}, both, true},
		{[]string{"application/json", "text/event-stream"}, both, true}, // two header lines
		{[]string{"Application/JSON;q=0.9, TEXT/event-stream"}, both, true},
		{[]string{"*/*"}, both, true},
		{[]string{"application/*, text/*"}, both, true},
		{[]string{"application/json"}, both, false},
		{[]string{"text/event-stream"}, both, false},
		{[]string{"application/json, text/event-stream;q=0"}, both, false},
		{[]string{"text/event-stream;q=0, */*"}, both, false}, // the specific range decides
		{[]string{"*/*;q=0, application/json, text/event-stream"}, both, true},
		{[]string{"text/event-stream"}, []string{"text/event-stream"}, true},
		{[]string{"text/html"}, []string{"text/event-stream"}, false},
		{[]string{""}, []string{"text/event-stream"}, false},
	} {
		if got := accepts(tt.header, tt.types...); got != tt.want {
			t.Errorf("accepts(%q, %q) = %v, want %v", tt.header, tt.types, got, tt.want)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "Application/JSON": true,
		"": false, "text/plain": false, "application/jsonl": false, "application/json-seq": false,
	} {
		if isJSON(ct) != want {
			t.Errorf("isJSON(%q) = %v", ct, !want)
		}
	}
}

func TestReadAllBounded(t *testing.T) {
	const limit = 1 << 20
	body := strings.Repeat("x", limit)
	for _, declared := range []int64{-1, limit} {
		b, err := readAll(strings.NewReader(body), declared, limit)
		if err != nil || len(b) != limit || int64(cap(b)) > limit+1 {
			t.Errorf("declared %d: %d bytes, cap %d, %v", declared, len(b), cap(b), err)
		}
	}
	rec := httptest.NewRecorder()
	_, err := readAll(http.MaxBytesReader(rec, io.NopCloser(strings.NewReader(body+"y")), limit), -1, limit)
	if _, ok := err.(*http.MaxBytesError); !ok {
		t.Errorf("one byte over: %v", err)
	}
}

// TestTrustedProxyPeers: with trusted_proxy CIDRs, other peers get 403.
func TestTrustedProxyPeers(t *testing.T) {
	g := New(http.NotFoundHandler(), Options{Endpoint: "/mcp", Sessions: NewSessions()})
	for _, tt := range []struct {
		nets []string
		want int
	}{{nil, 404}, {[]string{"127.0.0.0/8"}, 404}, {[]string{"10.0.0.0/8"}, 403}} {
		g.o.TrustedProxy.Nets = nil
		for _, n := range tt.nets {
			g.o.TrustedProxy.Nets = append(g.o.TrustedProxy.Nets, netip.MustParsePrefix(n))
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/elsewhere", nil)
		req.RemoteAddr = "127.0.0.1:5555"
		g.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("trusted_proxy %v: %d, want %d", tt.nets, rec.Code, tt.want)
		}
	}
}

// BenchmarkHTTPGuard is the guard's cost per request, in process: the
// same request straight to a handler that does nothing ("bare") and
// through the guard, for a tools/call in a session (the common case; a
// browser's also has an Origin to check), an initialize (the body is
// parsed for its method) and a GET.
func BenchmarkHTTPGuard(b *testing.B) {
	sessions := NewSessions()
	sid := sessions.Generate()
	nop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body); w.WriteHeader(200) })
	g := New(nop, Options{Endpoint: "/mcp", Sessions: sessions, MaxBody: 4 << 20, WriteTimeout: 30 * time.Second, MaxSessions: 1 << 20, SessionIdleTTL: time.Minute})
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"filesystem_read","arguments":{"path":"/data/users.json"}}}`
	local := context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	req := func(method, body string, session bool) *http.Request {
		r := httptest.NewRequest(method, "/mcp", strings.NewReader(body)).WithContext(local)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		if session {
			r.Header.Set("Mcp-Session-Id", sid)
			r.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		return r
	}
	for _, bc := range []struct {
		name    string
		h       http.Handler
		method  string
		body    string
		session bool
	}{
		{"bare/tools-call", nop, "POST", call, true},
		{"guard/tools-call", g, "POST", call, true},
		{"guard/tools-call-browser", g, "POST", call, true}, // with an Origin to check
		{"guard/initialize", g, "POST", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`, false},
		{"guard/get", g, "GET", "", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			r := req(bc.method, bc.body, bc.session)
			if strings.HasSuffix(bc.name, "-browser") {
				r.Header.Set("Origin", "http://127.0.0.1:8080")
			}
			rec := connRecorder{httptest.NewRecorder()}
			for b.Loop() {
				r.Body = io.NopCloser(strings.NewReader(bc.body))
				r.ContentLength = int64(len(bc.body))
				rec.Body.Reset()
				bc.h.ServeHTTP(rec, r)
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// connRecorder is a recorder with a connection's deadlines, as
// http.ResponseController finds them on a server's writer.
type connRecorder struct{ *httptest.ResponseRecorder }

func (connRecorder) SetReadDeadline(time.Time) error  { return nil }
func (connRecorder) SetWriteDeadline(time.Time) error { return nil }

// TestWriteDeadlinePerWrite: write_timeout bounds each write, not the
// response: a handler that works longer than the timeout before answering
// is not cut, while a client that stops reading is dropped.
func TestWriteDeadlinePerWrite(t *testing.T) {
	stalled := make(chan error, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow-call" {
			time.Sleep(700 * time.Millisecond) // longer than write_timeout
			io.WriteString(w, "done")
			return
		}
		chunk := make([]byte, 1<<20)
		for {
			if _, err := w.Write(chunk); err != nil {
				stalled <- err
				return
			}
		}
	})
	srv, err := NewServer(handler, ServerOptions{Guard: Options{Endpoint: "/mcp", Sessions: NewSessions(), MaxBody: 1 << 20, MaxSessions: 1, WriteTimeout: 300 * time.Millisecond},
		ReadTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.HTTP.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/slow-call")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "done" {
		t.Fatalf("a call longer than write_timeout: %q", b)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-stalled:
		if !strings.Contains(err.Error(), "timeout") {
			t.Errorf("the stalled write ended with %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client that stopped reading still held its response after 5s")
	}
}

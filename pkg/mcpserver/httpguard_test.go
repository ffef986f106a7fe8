package mcpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/httpguard"
)

// The tests here run the real `serve --http` stack (httpguard, mcp-go,
// the governed runtime) on a loopback port.

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

type httpServer struct {
	addr     string // host:port
	url      string // http://addr/mcp
	sessions *httpguard.Sessions
}

// serveTestHTTP serves a test runtime over HTTP with the http: section
// changed by edit; stopped with the test.
func serveTestHTTP(t *testing.T, edit func(*config.HTTP)) httpServer {
	t.Helper()
	rt := openTestRuntime(t, "http-guard")
	if edit != nil {
		edit(&rt.Cfg.HTTP)
	}
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	sessions := httpguard.NewSessions()
	go func() {
		done <- rt.ServeHTTP(ctx, HTTPOptions{Addr: "127.0.0.1:0", Sessions: sessions, Ready: func(a string) { addr <- a }})
	}()
	var a string
	select {
	case a = <-addr:
	case err := <-done:
		t.Fatalf("ServeHTTP: %v", err)
	}
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("ServeHTTP did not return after its context ended")
		}
	})
	return httpServer{addr: a, url: "http://" + a + "/mcp", sessions: sessions}
}

type reply struct {
	code    int
	header  http.Header
	body    string
	session string
}

// do sends one request; headers are name, value pairs.
func (s httpServer) do(t *testing.T, method, body string, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b), resp.Header.Get("Mcp-Session-Id")}
}

var postHeaders = []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream"}

func (s httpServer) initialize(t *testing.T) string {
	t.Helper()
	r := s.do(t, "POST", initBody, postHeaders...)
	if r.code != 200 || r.session == "" {
		t.Fatalf("initialize: %d %q", r.code, r.body)
	}
	return r.session
}

// TestHTTPTransportStatus: the status codes of MCP 2025-11-25 "Transports:
// Streamable HTTP" (and 2026-07-28 requests, which have no sessions).
func TestHTTPTransportStatus(t *testing.T) {
	s := serveTestHTTP(t, nil)
	sid := s.initialize(t)
	unknown := "mcp-session-AAAAAAAAAAAAAAAAAAAAAAAAAA"
	const list = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	modernList := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	tests := []struct {
		name    string
		method  string
		body    string
		headers []string
		want    int
		in      string // in the body
	}{
		{"GET without Accept", "GET", "", []string{"Mcp-Session-Id", sid}, 406, "text/event-stream"},
		{"GET Accept: application/json", "GET", "", []string{"Mcp-Session-Id", sid, "Accept", "application/json"}, 406, ""},
		{"GET Accept: text/*;q=0", "GET", "", []string{"Mcp-Session-Id", sid, "Accept", "text/*;q=0, */*"}, 406, ""},
		{"GET without session", "GET", "", []string{"Accept", "text/event-stream"}, 400, "Mcp-Session-Id header required"},
		{"GET unknown session", "GET", "", []string{"Accept", "text/event-stream", "Mcp-Session-Id", unknown}, 404, "unknown or ended session"},
		{"POST text/plain", "POST", list, []string{"Content-Type", "text/plain", "Accept", "application/json, text/event-stream", "Mcp-Session-Id", sid}, 415, "application/json"},
		{"POST without Content-Type", "POST", list, []string{"Accept", "application/json, text/event-stream", "Mcp-Session-Id", sid}, 415, ""},
		{"POST Accept: application/json only", "POST", list, []string{"Content-Type", "application/json", "Accept", "application/json", "Mcp-Session-Id", sid}, 406, "both application/json and text/event-stream"},
		{"POST without Accept", "POST", list, []string{"Content-Type", "application/json", "Mcp-Session-Id", sid}, 406, ""},
		{"POST Accept: */* (RFC 9110 media range)", "POST", list, []string{"Content-Type", "application/json; charset=utf-8", "Accept", "*/*", "Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-11-25"}, 200, "filesystem_read"},
		{"POST without session", "POST", list, postHeaders, 400, "Mcp-Session-Id header required"},
		{"POST unknown session", "POST", list, append([]string{"Mcp-Session-Id", unknown}, postHeaders...), 404, "unknown or ended session"},
		{"POST 2026-07-28 needs no session", "POST", modernList, append([]string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/list"}, postHeaders...), 200, "filesystem_read"},
		{"GET 2026-07-28: mcp-go's 405", "GET", "", []string{"Mcp-Protocol-Version", "2026-07-28"}, 405, ""},
		{"DELETE without session", "DELETE", "", nil, 400, "Mcp-Session-Id header required"},
		{"DELETE unknown session", "DELETE", "", []string{"Mcp-Session-Id", unknown}, 404, "unknown or ended session"},
		{"PUT", "PUT", list, postHeaders, 405, "use POST, GET or DELETE"},
		{"PATCH", "PATCH", list, postHeaders, 405, ""},
		{"OPTIONS (no CORS)", "OPTIONS", "", nil, 405, ""},
	}
	for _, tt := range tests {
		r := s.do(t, tt.method, tt.body, tt.headers...)
		if r.code != tt.want || !strings.Contains(r.body, tt.in) {
			t.Errorf("%s: %d %q, want %d with %q", tt.name, r.code, r.body, tt.want, tt.in)
		}
		if r.code == 405 && tt.method != "GET" && r.header.Get("Allow") != "GET, POST, DELETE" {
			t.Errorf("%s: Allow %q", tt.name, r.header.Get("Allow"))
		}
		if r.code >= 400 && r.code != 405 && !strings.HasPrefix(r.body, `{"jsonrpc":"2.0","error":{"code":-32600,`) {
			t.Errorf("%s: body %q is not a JSON-RPC error without id", tt.name, r.body)
		}
	}
	if r := s.do(t, "DELETE", "", "Mcp-Session-Id", sid); r.code != 200 {
		t.Fatalf("DELETE of a live session: %d %q", r.code, r.body)
	}
	if r := s.do(t, "DELETE", "", "Mcp-Session-Id", sid); r.code != 404 {
		t.Errorf("DELETE of an ended session: %d, want 404", r.code)
	}
	if r := s.do(t, "POST", list, append([]string{"Mcp-Session-Id", sid}, postHeaders...)...); r.code != 404 {
		t.Errorf("POST in an ended session: %d, want 404", r.code)
	}
}

// TestHTTPMaxSessions: initialize beyond max_sessions gets 503 with
// Retry-After; ending a session makes room.
func TestHTTPMaxSessions(t *testing.T) {
	s := serveTestHTTP(t, func(h *config.HTTP) { h.MaxSessions = 2; h.SessionIdleTTL = config.Duration(10 * time.Second) })
	first := s.initialize(t)
	s.initialize(t)
	r := s.do(t, "POST", initBody, postHeaders...)
	if r.code != 503 || r.header.Get("Retry-After") != "5" || !strings.Contains(r.body, "too many sessions") {
		t.Fatalf("third initialize: %d Retry-After %q %q", r.code, r.header.Get("Retry-After"), r.body)
	}
	s.do(t, "DELETE", "", "Mcp-Session-Id", first)
	s.initialize(t)
}

// TestHTTPOrigin: a present Origin must be the listener's own or listed
// (MCP "Security Warning": 403 otherwise); no Origin is no browser.
func TestHTTPOrigin(t *testing.T) {
	s := serveTestHTTP(t, func(h *config.HTTP) { h.AllowedOrigins = []string{"https://app.example.com"} })
	_, port, _ := net.SplitHostPort(s.addr)
	tests := []struct {
		origin, host string
		want         int
	}{
		{"", "", 200},
		{"http://evil.example.com", "", 403},
		{"http://evil.example.com", "127.0.0.1:" + port, 403}, // the measured bug: Host loopback, Origin foreign
		{"http://evil.example.com:" + port, "", 403},
		{"https://app.example.com", "", 200},
		{"https://APP.example.com:443", "", 200},
		{"http://app.example.com", "", 403}, // another scheme is another origin
		{"http://127.0.0.1:" + port, "", 200},
		{"http://localhost:" + port, "localhost:" + port, 200},
		{"http://[::1]:" + port, "", 200},
		{"http://127.0.0.1:1", "", 403},
		{"https://127.0.0.1:" + port, "", 403},
		{"null", "", 403},
	}
	for _, tt := range tests {
		h := postHeaders
		if tt.origin != "" {
			h = append([]string{"Origin", tt.origin}, postHeaders...)
		}
		req, _ := http.NewRequest("POST", s.url, strings.NewReader(initBody))
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("Origin %q Host %q: %d %s, want %d", tt.origin, tt.host, resp.StatusCode, b, tt.want)
		}
	}
	// mcp-go's DNS-rebinding check stays on behind the guard: a loopback
	// connection with a foreign Host is refused even without Origin.
	req, _ := http.NewRequest("POST", s.url, strings.NewReader(initBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Host = "evil.example.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("foreign Host on loopback: %d, want 403", resp.StatusCode)
	}
}

// vmRSS is this process's resident set in bytes (/proc/self/status), or
// -1 where there is none.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

type memSample struct {
	heapInuse, totalAlloc uint64
	rss                   int64
}

func sampleMem() memSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{m.HeapInuse, m.TotalAlloc, vmRSS()}
}

// pattern is a generator: an endless stream of JSON-ish bytes without
// holding more than one buffer.
type pattern struct{ n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(b)), p.n)
	for i := range b[:n] {
		b[i] = 'a'
	}
	p.n -= n
	return int(n), nil
}

// rawPOST writes a POST to /mcp on a raw connection: headers, then body
// (from the generator, chunked when length < 0) while reading the reply
// in parallel, as a server that answers early and closes needs.
func rawPOST(t *testing.T, addr string, length int64, body io.Reader) (*http.Response, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	te := "Transfer-Encoding: chunked"
	if length >= 0 {
		te = "Content-Length: " + strconv.FormatInt(length, 10)
	}
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n%s\r\n\r\n", addr, te)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := body.Read(buf)
			if n > 0 {
				chunk := buf[:n]
				if length < 0 {
					if _, err := fmt.Fprintf(c, "%x\r\n", n); err != nil {
						return
					}
				}
				if _, err := c.Write(chunk); err != nil {
					return
				}
				if length < 0 {
					c.Write([]byte("\r\n"))
				}
			}
			if err != nil {
				if length < 0 {
					c.Write([]byte("0\r\n\r\n"))
				}
				return
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// TestHTTPBodyLimit: a 100 MB body gets 413 and the server reads no more
// than max_body of it, so memory stays bounded: the test measures what
// this process (server and client) allocated and its RSS.
func TestHTTPBodyLimit(t *testing.T) {
	s := serveTestHTTP(t, nil) // max_body: the default 4 MiB
	s.initialize(t)            // warm up
	const hundredMB = 100 << 20
	for _, tc := range []struct {
		name   string
		length int64
	}{{"Content-Length 100 MiB", hundredMB}, {"chunked 100 MiB", -1}} {
		before := sampleMem()
		resp, err := rawPOST(t, s.addr, tc.length, &pattern{n: hundredMB})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		after := sampleMem()
		if resp.StatusCode != 413 {
			t.Fatalf("%s: %d, want 413", tc.name, resp.StatusCode)
		}
		alloc := int64(after.totalAlloc - before.totalAlloc)
		rss := after.rss - before.rss
		t.Logf("%s: 413; allocated %.1f MB, RSS %+.1f MB (%.1f → %.1f MB)", tc.name, float64(alloc)/1e6, float64(rss)/1e6, float64(before.rss)/1e6, float64(after.rss)/1e6)
		if alloc > 32<<20 {
			t.Errorf("%s: %d bytes allocated while refusing the body; want < 32 MiB (the body is read as it comes)", tc.name, alloc)
		}
		if before.rss > 0 && !raceEnabled && rss > 32<<20 {
			t.Errorf("%s: RSS grew by %d bytes; want < 32 MiB", tc.name, rss)
		}
	}
	// A body within the limit still works.
	s.initialize(t)
}

// TestHTTPSlowSenders: a body trickling at one byte every 500 ms is cut at
// read_timeout (1s) with 408 and the connection closed; an idle keep-alive
// connection is closed after idle_timeout.
func TestHTTPSlowSenders(t *testing.T) {
	s := serveTestHTTP(t, func(h *config.HTTP) {
		h.ReadTimeout = config.Duration(time.Second)
		h.IdleTimeout = config.Duration(time.Second)
	})
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n", s.addr)
	stopDrip := make(chan struct{})
	defer close(stopDrip)
	go func() {
		for range 1000 {
			select {
			case <-stopDrip:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if _, err := c.Write([]byte("{")); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("slow body: no response (%v) after %s", err, time.Since(start))
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("slow body: %d, want 408", resp.StatusCode)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err == nil {
		t.Error("slow body: the connection stayed open after 408")
	}
	took := time.Since(start)
	t.Logf("slow body cut after %s", took.Round(10*time.Millisecond))
	if took > 3*time.Second {
		t.Errorf("slow body cut after %s, want about read_timeout (1s)", took)
	}

	// idle keep-alive
	c2, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s", s.addr, len(initBody), initBody)
	br2 := bufio.NewReader(c2)
	resp, err = http.ReadResponse(br2, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("keep-alive request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	idleStart := time.Now()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br2.ReadByte(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("idle connection: %v, want it closed by the server", err)
	}
	if idle := time.Since(idleStart); idle > 3*time.Second {
		t.Errorf("idle connection closed after %s, want about idle_timeout (1s)", idle)
	}
}

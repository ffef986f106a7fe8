package mcpserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/httpguard"
)

// Sessions of `serve --http` end after session_idle_ttl with everything
// held for them; a serving process is listed for status.

// TestHTTPSessionsExpire: 20,000 sessions opened with initialize and never
// ended are all swept after session_idle_ttl (1s), with what they held:
// the heap returns near where it was. Each session costs mcp-go about
// 11 kB, so a sweep that left them would leave ~220 MB and fail.
func TestHTTPSessionsExpire(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 sessions")
	}
	s := serveTestHTTP(t, func(h *config.HTTP) {
		h.SessionIdleTTL = config.Duration(time.Second)
		h.MaxSessions = 30000
	})
	for range 50 { // warm up pools and caches
		s.initialize(t)
	}
	waitSessions(t, s.sessions, 0, 10*time.Second)
	before := sampleMem()

	const total, workers = 20000, 4
	var next, peak atomic.Int64
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= total {
				req, _ := http.NewRequest("POST", s.url, strings.NewReader(initBody))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("initialize: %d", resp.StatusCode)
					return
				}
				if n := int64(s.sessions.Len()); n > peak.Load() {
					peak.Store(n)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	atEnd := sampleMem()
	live := s.sessions.Len()
	waitSessions(t, s.sessions, 0, 15*time.Second)
	tr.CloseIdleConnections()
	after := sampleMem()
	t.Logf("%d initialize in %s; live sessions: peak %d, %d at the end; heap in use %.1f MB before, %.1f MB at the end, %.1f MB after the sweep; RSS %.1f → %.1f → %.1f MB",
		total, took.Round(time.Millisecond), peak.Load(), live,
		float64(before.heapInuse)/1e6, float64(atEnd.heapInuse)/1e6, float64(after.heapInuse)/1e6,
		float64(before.rss)/1e6, float64(atEnd.rss)/1e6, float64(after.rss)/1e6)
	if grew := int64(after.heapInuse) - int64(before.heapInuse); grew > 16<<20 {
		t.Errorf("heap in use grew by %d bytes after every session was swept; want < 16 MiB", grew)
	}
}

func waitSessions(t *testing.T, s *httpguard.Sessions, want int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for s.Len() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d live sessions after %s, want %d", s.Len(), limit, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHTTPListenerRecord: a serving `serve --http` is listed for status
// (LiveListeners) until it stops.
func TestHTTPListenerRecord(t *testing.T) {
	rt := openTestRuntime(t, "http-record")
	ctx, stop := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- rt.ServeHTTP(ctx, HTTPOptions{Addr: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
	}()
	addr := <-ready
	live, err := LiveListeners(rt.Dir)
	if err != nil || len(live) != 1 || live[0].Addr != addr || !live[0].Loopback || live[0].PID != os.Getpid() || live[0].TLS {
		t.Fatalf("while serving: %+v %v", live, err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if live, _ := LiveListeners(rt.Dir); len(live) != 0 {
		t.Fatalf("after stopping: %+v", live)
	}
}

// TestHTTPSessionsExpireThroughProxy: with upstreams, a swept session also
// takes what the wire handler and the proxy held for it (proxy.OnSessionEnd
// from mcp-go's unregister hook), and 2026-07-28 requests, which have no
// sessions, leave nothing behind whatever Mcp-Session-Id they send.
func TestHTTPSessionsExpireThroughProxy(t *testing.T) {
	up := server.NewMCPServer("up", "1.0.0", server.WithToolCapabilities(false))
	up.AddTool(mcp.NewTool("echo"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo"), nil
	})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(up))
	defer ts.Close()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Source.StateDir, cfg.Source.File = filepath.Join(dir, "state"), filepath.Join(dir, "agentmesh.yaml")
	cfg.Agent = config.Agent{Name: "http-proxy", Sponsor: "me@example.com"}
	cfg.Audit.Witness, cfg.Policies.Paths = false, nil
	cfg.Upstreams = []config.Upstream{{Name: "up", URL: ts.URL + "/mcp"}}
	cfg.HTTP.SessionIdleTTL = config.Duration(time.Second)
	rt, err := Open(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	ctx, stop := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	wires := make(chan *wireHandler, 1)
	sessions := httpguard.NewSessions()
	go func() {
		done <- rt.ServeHTTP(ctx, HTTPOptions{Addr: "127.0.0.1:0", Sessions: sessions, Ready: func(a string) { ready <- a },
			wireReady: func(w *wireHandler) { wires <- w }})
	}()
	s := httpServer{addr: <-ready, sessions: sessions}
	s.url = "http://" + s.addr + "/mcp"
	wh := <-wires
	defer func() { stop(); <-done }()

	const n = 100
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	for range n {
		sid := s.initialize(t)
		if r := s.do(t, "POST", list, append([]string{"Mcp-Session-Id", sid, "Mcp-Protocol-Version", "2025-11-25"}, postHeaders...)...); r.code != 200 || !strings.Contains(r.body, "up__echo") {
			t.Fatalf("tools/list through the proxy: %d %q", r.code, r.body)
		}
	}
	modernList := `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	for i := range 20 {
		r := s.do(t, "POST", modernList, append([]string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/list", "Mcp-Session-Id", fmt.Sprintf("made-up-%d", i)}, postHeaders...)...)
		if r.code != 200 {
			t.Fatalf("2026-07-28 tools/list: %d %q", r.code, r.body)
		}
	}
	if got := wh.sessions(); got > n {
		t.Fatalf("%d session wires for %d sessions: 2026-07-28 requests left some", got, n)
	}
	waitSessions(t, sessions, 0, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for wh.sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d session wires left after every session was swept", wh.sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

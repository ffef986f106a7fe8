package mcpserver

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// TestHTTPSessions: a session exists only after initialize and ends with
// DELETE (MCP 2025-11-25, "Session Management"): requests with an unknown
// or terminated session id get 404 and run nothing.
func TestHTTPSessions(t *testing.T) {
	rt := openTestRuntime(t, "http-test")
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- rt.ServeHTTP(ctx, HTTPOptions{Addr: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	}()
	url := "http://" + <-addr + "/mcp"

	post := func(session, body string) (int, string, string) { return postMCP(t, url, session, body) }
	const list = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	code, sid, _ := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if code != 200 || sid == "" {
		t.Fatalf("initialize: %d, session %q", code, sid)
	}
	if code, _, body := post(sid, list); code != 200 || !strings.Contains(body, "filesystem_read") {
		t.Fatalf("tools/list in the session: %d %s", code, body)
	}
	if code, _, _ := post("mcp-session-123e4567-e89b-12d3-a456-426614174000", list); code != 404 {
		t.Fatalf("made-up session id: %d, want 404", code)
	}
	req, _ := http.NewRequest("DELETE", url, nil)
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _, _ := post(sid, list); code != 404 {
		t.Fatalf("terminated session: %d, want 404", code)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not return after its context ended")
	}
}

// openTestRuntime opens a runtime on embedded defaults in a temporary state
// directory, without a witness or policy files; closed with the test.
func openTestRuntime(t *testing.T, name string) *Runtime {
	t.Helper()
	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Agent = config.Agent{Name: name, Sponsor: "me@example.com"}
	cfg.Audit.Witness = false
	cfg.Policies.Paths = nil
	rt, err := Open(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// postMCP POSTs one JSON-RPC message to url (in session, at 2025-11-25,
// when session is set) and returns the status, the Mcp-Session-Id the
// answer names and the body.
func postMCP(t *testing.T, url, session, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
}

package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
)

// rawSchema has keys mcp-go's typed schema does not model ($defs,
// x-vendor, a nested $ref, a description with HTML): they must reach the
// client unchanged.
const rawSchema = `{"type":"object","$defs":{"unit":{"enum":["c","f"]}},"properties":{"city":{"type":"string","description":"<b>City</b> & country","minLength":2},"unit":{"$ref":"#/$defs/unit"}},"required":["city"],"additionalProperties":false,"x-vendor":{"cache":true}}`

const rawOutput = `{"type":"object","properties":{"temp":{"type":"number"}},"x-vendor":1}`

// upstreamServer is a real mcp-go server over streamable HTTP on loopback.
func upstreamServer(t *testing.T) string {
	url, _ := upstreamServerWith(t, "")
	return url
}

// upstreamServerWith also returns the server (to change its tools) and,
// when token is set, refuses requests without "Authorization: Bearer
// <token>".
func upstreamServerWith(t *testing.T, token string) (string, *server.MCPServer) {
	s := server.NewMCPServer("weather", "1.0.0", server.WithToolCapabilities(true), server.WithResourceCapabilities(false, false), server.WithPromptCapabilities(false))
	tool := mcp.NewToolWithRawSchema("forecast", "Forecast for a city.", json.RawMessage(rawSchema))
	tool.RawOutputSchema = json.RawMessage(rawOutput)
	s.AddTool(tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if tok := req.Params.Meta; tok != nil && tok.ProgressToken != nil {
			srv := server.ServerFromContext(ctx)
			// A long-running operation: progress spaced out in time, as
			// mcp-go's HTTP server may reorder notifications sent at once.
			for i := 1; i <= 3; i++ {
				srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{"progressToken": tok.ProgressToken, "progress": i, "total": 3})
				time.Sleep(20 * time.Millisecond)
			}
		}
		return mcp.NewToolResultText("sunny in " + req.GetString("city", "") + "; api_key=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"), nil
	})
	s.AddResource(mcp.NewResource("weather://stations", "stations", mcp.WithMIMEType("text/plain")), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "LHR\npassword: hunter2\n"}}, nil
	})
	s.AddPrompt(mcp.NewPrompt("brief", mcp.WithArgument("city")), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("brief", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Brief me on "+req.Params.Arguments["city"]))}), nil
	})
	var h http.Handler = server.NewStreamableHTTPServer(s)
	if token != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp", s
}

func openRuntime(t *testing.T, up config.Upstream, policy string) *mcpserver.Runtime {
	return openRuntimeWith(t, up, policy, nil)
}

func openRuntimeWith(t testing.TB, up config.Upstream, policy string, edit func(*config.Config)) *mcpserver.Runtime {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(dir, "state")
	cfg.Source.File = filepath.Join(dir, "agentmesh.yaml")
	cfg.Agent = config.Agent{Name: "proxy-test", Sponsor: "me@example.com"}
	cfg.Tools.Filesystem.Enabled, cfg.Tools.Database.Enabled, cfg.Tools.API.Enabled, cfg.Tools.Code.Enabled = false, false, false, false
	cfg.Audit.Witness = false
	cfg.Upstreams = []config.Upstream{up}
	cfg.Policies.Paths = nil
	if policy != "" {
		p := filepath.Join(dir, "policy.yaml")
		if err := writeFile(p, policy); err != nil {
			t.Fatal(err)
		}
		cfg.Policies.Paths = []string{p}
	}
	if edit != nil {
		edit(&cfg)
	}
	rt, err := mcpserver.Open(context.Background(), &cfg, mcpserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func connect(t testing.TB, rt *mcpserver.Runtime) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(rt.MCP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "proxy-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// rawToolsList returns the tools/list result as JSON objects, the way a
// client that keeps unknown keys sees them.
func rawToolsList(t *testing.T, rt *mcpserver.Runtime) map[string]map[string]any {
	t.Helper()
	msg := rt.MCP.HandleMessage(context.Background(), []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	raw, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Result struct {
			Tools []map[string]any `json:"tools"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, tl := range resp.Result.Tools {
		out[tl["name"].(string)] = tl
	}
	return out
}

func TestHTTPUpstreamSchemasPassThroughUnchanged(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: upstreamServer(t)}, "")
	tools := rawToolsList(t, rt)
	got, ok := tools["wx__forecast"]
	if !ok {
		t.Fatalf("tools/list lacks wx__forecast: %v", tools)
	}
	for key, want := range map[string]string{"inputSchema": rawSchema, "outputSchema": rawOutput} {
		var w any
		json.Unmarshal([]byte(want), &w)
		if !reflect.DeepEqual(got[key], w) {
			gj, _ := json.Marshal(got[key])
			t.Errorf("%s = %s, want %s", key, gj, want)
		}
	}
	if got["description"] != "Forecast for a city." {
		t.Errorf("description = %q", got["description"])
	}
}

func TestHTTPUpstreamCallsAreGovernedAndAudited(t *testing.T) {
	policy := `policies:
  - name: wx
    rules:
      - name: no-paris
        condition: 'upstream == "wx" && upstream_tool == "forecast" && params.city == "Paris"'
        action: block
        message: "Paris is off limits"
      - name: no-stations
        condition: 'method == "resources/read" && uri startsWith "weather://stations"'
        action: block
        message: "stations are private"
`
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: upstreamServer(t)}, policy)
	c := connect(t, rt)
	ctx := context.Background()

	var mu sync.Mutex
	var progress []float64
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			defer mu.Unlock()
			if n.Params.AdditionalFields["progressToken"] == "client-token-7" {
				progress = append(progress, n.Params.AdditionalFields["progress"].(float64))
			}
		}
	})
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "wx__forecast", map[string]any{"city": "Oslo"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "client-token-7"}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(mcp.TextContent).Text
	if res.IsError || !strings.HasPrefix(text, "sunny in Oslo") || strings.Contains(text, "sk-proj-abc") || !strings.Contains(text, "[REDACTED:") {
		t.Fatalf("allowed call: isError %v, text %q: want the forecast with the key redacted", res.IsError, text)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	if !reflect.DeepEqual(progress, []float64{1, 2, 3}) {
		t.Errorf("progress under the client's token = %v, want [1 2 3]", progress)
	}
	mu.Unlock()

	req.Params.Arguments = map[string]any{"city": "Paris"}
	req.Params.Meta = nil
	res, err = c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "Paris is off limits") {
		t.Fatalf("blocked call: %+v", res)
	}

	// Resources: governed by the same policy (method, uri).
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "weather://stations"
	if _, err := c.ReadResource(ctx, rr); err == nil || !strings.Contains(err.Error(), "stations are private") {
		t.Fatalf("resources/read of a blocked uri: err %v, want the policy's message", err)
	}
	// Prompts: forwarded under the prefix.
	gp := mcp.GetPromptRequest{}
	gp.Params.Name, gp.Params.Arguments = "wx__brief", map[string]string{"city": "Oslo"}
	pr, err := c.GetPrompt(ctx, gp)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 1 || pr.Messages[0].Content.(mcp.TextContent).Text != "Brief me on Oslo" || pr.Messages[0].Role != mcp.RoleUser {
		t.Fatalf("prompt = %+v", pr.Messages)
	}

	got := invocations(t, rt, func(e audit.Entry) string { return e.Tool + " " + string(e.Result) + " " + e.Upstream })
	want := []string{"wx__forecast redacted wx", "wx__forecast blocked wx", "resources/read blocked wx", "wx__brief allowed wx"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audited calls = %q, want %q", got, want)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// TestHTTPUpstreamHeadersAndListChanged: the configured headers (with
// ${env:VAR} resolved) reach the upstream; a tool the upstream adds later is
// picked up from its list_changed notification and announced to clients;
// an empty prefix exposes the upstream's own names.
func TestHTTPUpstreamHeadersAndListChanged(t *testing.T) {
	t.Setenv("WX_TOKEN", "s3cret-token")
	url, up := upstreamServerWith(t, "s3cret-token")
	empty := ""
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: url, Headers: map[string]string{"Authorization": "Bearer ${env:WX_TOKEN}"}, Prefix: &empty, Pin: "new-allowed"}, "")
	c := connect(t, rt)
	ctx := context.Background()
	var changed atomic.Int32
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/tools/list_changed" {
			changed.Add(1)
		}
	})
	tools := rawToolsList(t, rt)
	if _, ok := tools["forecast"]; !ok {
		t.Fatalf("with prefix \"\" the tool is exposed as forecast: %v", tools)
	}
	up.AddTool(mcp.NewTool("alerts", mcp.WithDescription("Weather alerts.")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("no alerts"), nil
	})
	deadline := time.After(10 * time.Second)
	for {
		if _, ok := rawToolsList(t, rt)["alerts"]; ok {
			break
		}
		select {
		case <-deadline:
			t.Fatal("the upstream's new tool never appeared")
		case <-time.After(50 * time.Millisecond):
		}
	}
	for wait := time.Now().Add(5 * time.Second); changed.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the client was not sent notifications/tools/list_changed")
		}
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "alerts"
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError || res.Content[0].(mcp.TextContent).Text != "no alerts" {
		t.Fatalf("alerts: %+v, %v", res, err)
	}
}

func TestHTTPUpstreamWithoutItsHeaderIsNotExposed(t *testing.T) {
	url, _ := upstreamServerWith(t, "s3cret-token")
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: url}, "")
	if n, tools := rt.Proxy.Upstreams(); n != 1 || tools != 0 {
		t.Fatalf("upstreams %d, tools %d: an upstream refusing us exposes nothing", n, tools)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "wx__forecast"
	c := connect(t, rt)
	if _, err := c.CallTool(context.Background(), req); err == nil {
		t.Fatal("calling a tool of an unreachable upstream succeeded")
	}
}

// TestHTTPUpstreamSessionLoss: an HTTP upstream that forgets the session
// (restarted, or expired it) answers 404; the call fails with a reason and
// agentmesh opens a new session, so the next call works.
func TestHTTPUpstreamSessionLoss(t *testing.T) {
	newServer := func() http.Handler {
		s := server.NewMCPServer("weather", "1.0.0", server.WithToolCapabilities(true))
		s.AddTool(mcp.NewTool("ping", mcp.WithDescription("Pong.")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("pong"), nil
		})
		return server.NewStreamableHTTPServer(s, server.WithStateful(true))
	}
	var mu sync.Mutex
	current := newServer()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := current
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: ts.URL + "/mcp"}, "")
	c := connect(t, rt)
	ctx := context.Background()
	call := func() *mcp.CallToolResult {
		req := mcp.CallToolRequest{}
		req.Params.Name = "wx__ping"
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := call(); res.IsError {
		t.Fatalf("first call: %+v", res)
	}
	mu.Lock()
	current = newServer() // the upstream restarts: our session id is unknown to it
	mu.Unlock()
	res := call()
	if !res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "its session ended") {
		t.Fatalf("call after the upstream lost the session: %+v", res.Content)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := call()
		if !res.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new session: %+v", res.Content)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUnknownResourcesAndPromptsAreAudited: reads of URIs no upstream
// serves, and prompts no upstream has, are refused by mcp-go and recorded.
func TestUnknownResourcesAndPromptsAreAudited(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: upstreamServer(t)}, "")
	c := connect(t, rt)
	ctx := context.Background()
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "weather://nope"
	if _, err := c.ReadResource(ctx, rr); err == nil {
		t.Fatal("reading an unknown resource succeeded")
	}
	gp := mcp.GetPromptRequest{}
	gp.Params.Name = "wx__nope"
	if _, err := c.GetPrompt(ctx, gp); err == nil {
		t.Fatal("getting an unknown prompt succeeded")
	}
	got := invocations(t, rt, func(e audit.Entry) string {
		return string(e.Result) + " " + strings.Join(e.Rules, ",") + " " + e.Reason
	})
	want := []string{`blocked builtin:unknown-resource unknown resource "weather://nope"`, `blocked builtin:unknown-prompt unknown prompt "wx__nope"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audited %q, want %q", got, want)
	}
}

// invocations describes each tool_invocation entry of rt's log with show.
func invocations(t *testing.T, rt *mcpserver.Runtime, show func(audit.Entry) string) []string {
	t.Helper()
	entries, err := rt.Log.List(context.Background(), auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Entry.Action == audit.ActionToolInvocation {
			out = append(out, show(e.Entry))
		}
	}
	return out
}

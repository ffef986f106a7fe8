package proxy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
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

// serveHTTP serves rt at /mcp on a loopback port until the test ends.
func serveHTTP(t *testing.T, rt *mcpserver.Runtime) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- rt.ServeHTTP(ctx, mcpserver.HTTPOptions{Addr: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("ServeHTTP did not return")
		}
	})
	return "http://" + <-addr + "/mcp"
}

// modern posts one stateless 2026-07-28 request (SEP-2575: version, client
// info and capabilities in _meta) with the standard headers given.
func modern(t *testing.T, url, body string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28"}
	for k, v := range headers {
		h[k] = v
	}
	code, b := post(t, url, body, h)
	s := string(b)
	if i := strings.Index(s, "data: "); i >= 0 { // an SSE answer
		s = strings.TrimSpace(strings.SplitN(s[i+len("data: "):], "\n", 2)[0])
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("answer to %s is not JSON-RPC (%d): %s", body, code, b)
	}
	return code, m
}

// post sends one JSON-RPC body to the streamable HTTP endpoint with the
// headers given and returns the status and the whole answer.
func post(t *testing.T, url, body string, headers map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern-test","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

// TestModernClientThroughProxy: a 2026-07-28 client in front of a
// 2025-11-25 upstream. server/discover reflects what the upstream offers
// (and no server-side elicitation); the standard headers Mcp-Method and
// Mcp-Name are checked against the body (400, -32020 on a mismatch); a
// matching call reaches the upstream.
func TestModernClientThroughProxy(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: upstreamServer(t)}, "")
	url := serveHTTP(t, rt)

	code, m := modern(t, url, `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{`+modernMeta+`}}`, map[string]string{"Mcp-Method": "server/discover"})
	if code != 200 {
		t.Fatalf("server/discover: %d %v", code, m)
	}
	caps, _ := m["result"].(map[string]any)["capabilities"].(map[string]any)
	for _, k := range []string{"tools", "resources", "prompts"} {
		if caps[k] == nil {
			t.Errorf("server/discover capabilities lack %s, which the upstream offers: %v", k, caps)
		}
	}
	for _, k := range []string{"elicitation", "logging", "completions"} {
		if caps[k] != nil {
			t.Errorf("server/discover declares %s, which neither agentmesh nor the upstream offers: %v", k, caps)
		}
	}

	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"wx__forecast","arguments":{"city":"Oslo"},` + modernMeta + `}}`
	name := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	code, m = modern(t, url, call, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": name("wx__other")})
	if code != http.StatusBadRequest {
		t.Fatalf("a mismatched Mcp-Name got %d, want 400: %v", code, m)
	}
	if e, _ := m["error"].(map[string]any); e == nil || e["code"] != float64(-32020) {
		t.Fatalf("a mismatched Mcp-Name got %v, want error -32020", m)
	}
	code, m = modern(t, url, call, map[string]string{"Mcp-Method": "prompts/get", "Mcp-Name": "wx__forecast"})
	if e, _ := m["error"].(map[string]any); code != http.StatusBadRequest || e == nil || e["code"] != float64(-32020) {
		t.Fatalf("a mismatched Mcp-Method got %d %v, want 400 and -32020", code, m)
	}
	code, m = modern(t, url, call, map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "wx__forecast"})
	res, _ := m["result"].(map[string]any)
	if code != 200 || res == nil || !strings.Contains(toJSON(res["content"]), "sunny in Oslo") || res["resultType"] != "complete" {
		t.Fatalf("the matching call: %d %v", code, m)
	}
}

// serveUpstreamHTTP serves s over streamable HTTP on loopback for the
// test and returns its endpoint URL.
func serveUpstreamHTTP(t *testing.T, s *server.MCPServer) string {
	t.Helper()
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// loggingUpstream offers logging and completions: its tool logs at debug,
// info and warning; its prompt's argument completes from a fixed list.
func loggingUpstream(t *testing.T) string {
	s := server.NewMCPServer("logs", "1.0.0", server.WithToolCapabilities(false), server.WithPromptCapabilities(false), server.WithLogging(), server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{}))
	s.AddTool(mcp.NewTool("chatty", mcp.WithDescription("logs three messages")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		srv := server.ServerFromContext(ctx)
		for _, l := range []mcp.LoggingLevel{mcp.LoggingLevelDebug, mcp.LoggingLevelInfo, mcp.LoggingLevelWarning} {
			srv.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(l, "up", map[string]any{"level was": string(l), "token": "password=hunter2"}))
		}
		// mcp-go's streamable HTTP server (this fixture) drops a
		// notification its forwarder goroutine has taken off the queue but
		// not yet written when the handler's result is written first (the
		// request's done channel closes under the lock the forwarder waits
		// for; only resumable streams wait for it). Give the forwarder time,
		// so that what is tested is agentmesh, not that race.
		time.Sleep(50 * time.Millisecond)
		return mcp.NewToolResultText("done"), nil
	})
	s.AddPrompt(mcp.NewPrompt("greet", mcp.WithArgument("city")), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("greet", nil), nil
	})
	return serveUpstreamHTTP(t, s)
}

type completer struct{}

func (completer) CompletePromptArgument(_ context.Context, name string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	var out []string
	for _, v := range []string{"Oslo", "Osaka", "Paris"} {
		if strings.HasPrefix(v, arg.Value) {
			out = append(out, v)
		}
	}
	return &mcp.Completion{Values: out, Total: len(out)}, nil
}

// messages posts body and returns every JSON-RPC message of the answer
// (one JSON body, or the data of each SSE event).
func messages(t *testing.T, url, body string, headers map[string]string) []map[string]any {
	t.Helper()
	code, b := post(t, url, body, headers)
	var out []map[string]any
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimPrefix(line, "data: ")
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no JSON-RPC message in the answer to %s: %d %s", body, code, b)
	}
	return out
}

// TestLoggingAndCompletionsThroughProxy: a 2026-07-28 request's own log
// level selects the upstream's messages for it (redacted, before the
// result); a 2025-11-25 session's logging/setLevel does the same for its
// calls; completion/complete reaches the upstream under the prompt's own
// name and is audited.
func TestLoggingAndCompletionsThroughProxy(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "lg", URL: loggingUpstream(t)}, "")
	url := serveHTTP(t, rt)
	levels := func(ms []map[string]any) (got []string, last map[string]any) {
		for _, m := range ms {
			if m["method"] == "notifications/message" {
				p := m["params"].(map[string]any)
				got = append(got, p["level"].(string))
				if strings.Contains(toJSON(p), "hunter2") {
					t.Errorf("a secret in a log message reached the client: %v", p)
				}
			}
		}
		return got, ms[len(ms)-1]
	}

	meta := strings.Replace(modernMeta, `"_meta":{`, `"_meta":{"io.modelcontextprotocol/logLevel":"info",`, 1)
	ms := messages(t, url, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lg__chatty",`+meta+`}}`,
		map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "lg__chatty"})
	got, last := levels(ms)
	// Both messages at or above info, and only those, before the result.
	// Their order is the upstream's to keep: mcp-go's server (this
	// fixture) may send a request's notification on the session's GET
	// stream instead of the POST's, and agentmesh relays each as it
	// arrives.
	slices.Sort(got)
	if strings.Join(got, ",") != "info,warning" || last["result"] == nil {
		t.Fatalf("2026-07-28 call at info: log levels %v, last message %v", got, last)
	}
	ms = messages(t, url, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lg__chatty",`+modernMeta+`}}`,
		map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "lg__chatty"})
	if got, _ := levels(ms); len(got) != 0 {
		t.Fatalf("a 2026-07-28 call without a level got log messages: %v", got)
	}
	ms = messages(t, url, `{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"lg__greet"},"argument":{"name":"city","value":"Os"},`+modernMeta+`}}`,
		map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "completion/complete"})
	if c := toJSON(ms[len(ms)-1]["result"]); !strings.Contains(c, `"values":["Oslo","Osaka"]`) {
		t.Fatalf("completion/complete: %v", ms)
	}

	// A 2025-11-25 session that asked for warnings.
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"legacy","version":"1"}}}`
	req, _ := http.NewRequest("POST", url, strings.NewReader(init))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := map[string]string{"Mcp-Session-Id": resp.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
	if m := messages(t, url, `{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"warning"}}`, h); m[0]["error"] != nil {
		t.Fatalf("logging/setLevel: %v", m)
	}
	got, _ = levels(messages(t, url, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"lg__chatty"}}`, h))
	if strings.Join(got, ",") != "warning" {
		t.Fatalf("2025-11-25 call at warning: log levels %v", got)
	}
	if calls := invocations(t, rt, func(e audit.Entry) string { return e.Tool + " " + string(e.Result) }); !slices.Contains(calls, "lg__greet allowed") {
		t.Fatalf("the completion was not audited as a read of the prompt: %v", calls)
	}
	// The session's end records the counts, not the messages.
	del, _ := http.NewRequest("DELETE", url, nil)
	del.Header.Set("Mcp-Session-Id", h["Mcp-Session-Id"])
	if resp, err := http.DefaultClient.Do(del); err == nil {
		resp.Body.Close()
	}
	var counted []string
	for deadline := time.Now().Add(5 * time.Second); len(counted) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, err := rt.Log.List(context.Background(), auditlog.Filter{AfterSeq: -1})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Entry.Action == audit.ActionUpstreamRequest && strings.Contains(string(e.Entry.Details), "notifications/message") {
				counted = append(counted, string(e.Entry.Details))
			}
		}
	}
	if len(counted) != 1 || !strings.Contains(counted[0], `"relayed":3`) || !strings.Contains(counted[0], `"below_level":`) || strings.Contains(counted[0], "level was") {
		t.Fatalf("log counts in the audit log: %v", counted)
	}
}

// modernOnlyUpstream speaks MCP 2026-07-28 alone: it refuses initialize.
// Its tool "confirm" asks for input with a multi-round-trip result
// (SEP-2322) and completes once the retry carries the answer and its
// opaque requestState.
func modernOnlyUpstream(t *testing.T) string {
	hooks := &server.Hooks{}
	hooks.AddOnRequestInitialization(func(_ context.Context, _ any, message any) error {
		var m struct {
			Method string `json:"method"`
		}
		if raw, ok := message.(json.RawMessage); ok && json.Unmarshal(raw, &m) == nil && m.Method == "initialize" {
			return errors.New("initialize was removed in 2026-07-28: use server/discover")
		}
		return nil
	})
	s := server.NewMCPServer("modern", "1.0.0", server.WithToolCapabilities(false), server.WithHooks(hooks))
	s.AddTool(mcp.NewTool("confirm", mcp.WithDescription("asks before it answers")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if info := server.RequestProtocolInfoFromContext(ctx); info == nil || !info.Modern {
			return mcp.NewToolResultError("not a 2026-07-28 request"), nil
		}
		if req.Params.RequestState != `{"opaque":"to agentmesh"}` {
			return server.NewInputRequestBuilder(`{"opaque":"to agentmesh"}`).Elicit("go", mcp.ElicitationParams{
				Message: "Go ahead?", RequestedSchema: json.RawMessage(`{"type":"object","properties":{"z":{"type":"boolean"},"a":{"type":"string"}}}`),
			}).ToolResult(), nil
		}
		answer := server.ElicitationResponse(req.Params.InputResponses, "go")
		if answer == nil {
			return mcp.NewToolResultError("no answer"), nil
		}
		return mcp.NewToolResultText("answered " + string(answer.Action) + " " + toJSON(answer.Content)), nil
	})
	return serveUpstreamHTTP(t, s)
}

// TestModernOnlyUpstream: an upstream that speaks only 2026-07-28 is
// started with server/discover and asked in that revision; its
// input_required result reaches a 2026-07-28 client untouched, and the
// client's retry goes to it with the requestState as it was.
func TestModernOnlyUpstream(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "md", URL: modernOnlyUpstream(t)}, "")
	url := serveHTTP(t, rt)
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "md__confirm"}
	ms := messages(t, url, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"md__confirm",`+modernMeta+`}}`, h)
	res, _ := ms[len(ms)-1]["result"].(map[string]any)
	if res == nil || res["resultType"] != "input_required" || res["requestState"] != `{"opaque":"to agentmesh"}` {
		t.Fatalf("the first call: %v", ms)
	}
	if got := toJSON(res["inputRequests"]); !strings.Contains(got, `"Go ahead?"`) {
		t.Fatalf("inputRequests: %s", got)
	}
	retry := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"md__confirm","requestState":"{\"opaque\":\"to agentmesh\"}",` +
		`"inputResponses":{"go":{"action":"accept","content":{"z":true,"a":"yes"}}},` + modernMeta + `}}`
	ms = messages(t, url, retry, h)
	res, _ = ms[len(ms)-1]["result"].(map[string]any)
	if res == nil || !strings.Contains(toJSON(res["content"]), `answered accept`) || res["isError"] == true {
		t.Fatalf("the retry: %v", ms)
	}
	// A 2025-11-25 client sees the same upstream's tools.
	c := connect(t, rt)
	tools, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "md__confirm" {
		t.Fatalf("tools/list for a 2025-11-25 client: %v %v", tools, err)
	}
}

type acceptAll struct{ asked *[]string }

func (a acceptAll) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	*a.asked = append(*a.asked, req.Params.Message)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"z": true}}}, nil
}

// TestLegacyClientModernUpstreamInput: a 2025-11-25 client in front of a
// 2026-07-28 upstream that asks for input: the request reaches the client
// as an elicitation (mcp-go bridges it), and the answer goes back to the
// upstream in the retry.
func TestLegacyClientModernUpstreamInput(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "md", URL: modernOnlyUpstream(t)}, "")
	var asked []string
	c, err := client.NewInProcessClientWithOptions(rt.MCP, client.WithElicitationHandler(acceptAll{&asked}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-11-25"
	init.Params.ClientInfo = mcp.Implementation{Name: "legacy", Version: "1"}
	init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "md__confirm"
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "Go ahead?" || res.IsError || !strings.Contains(toJSON(res.Content), "answered accept") {
		t.Fatalf("asked %v; result %s", asked, toJSON(res))
	}
}

// TestSubscriptionsArePerClient: two sessions subscribe to one URI; the
// upstream is subscribed once, stays subscribed while one session still
// is, and is unsubscribed when the last session ends (without its own
// unsubscribe).
func TestSubscriptionsArePerClient(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	hooks := &server.Hooks{}
	hooks.AddAfterSubscribe(func(_ context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		mu.Lock()
		seen = append(seen, "subscribe "+req.Params.URI)
		mu.Unlock()
	})
	hooks.AddAfterUnsubscribe(func(_ context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		mu.Lock()
		seen = append(seen, "unsubscribe "+req.Params.URI)
		mu.Unlock()
	})
	s := server.NewMCPServer("subs", "1.0.0", server.WithResourceCapabilities(true, false), server.WithHooks(hooks))
	s.AddResource(mcp.NewResource("subs://a", "a"), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "subs://a", Text: "a"}}, nil
	})
	rt := openRuntime(t, config.Upstream{Name: "sb", URL: serveUpstreamHTTP(t, s)}, "")
	url := serveHTTP(t, rt)
	session := func() map[string]string {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"sub","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return map[string]string{"Mcp-Session-Id": resp.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
	}
	a, b := session(), session()
	for _, h := range []map[string]string{a, b} {
		if m := messages(t, url, `{"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"subs://a"}}`, h); m[0]["error"] != nil {
			t.Fatalf("subscribe: %v", m)
		}
	}
	end := func(h map[string]string) {
		del, _ := http.NewRequest("DELETE", url, nil)
		del.Header.Set("Mcp-Session-Id", h["Mcp-Session-Id"])
		resp, err := http.DefaultClient.Do(del)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	end(a)
	mu.Lock()
	got := strings.Join(seen, "; ")
	mu.Unlock()
	if got != "subscribe subs://a" {
		t.Fatalf("after the first session ended the upstream saw: %s", got)
	}
	end(b)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got = strings.Join(seen, "; ")
		mu.Unlock()
		if strings.Contains(got, "unsubscribe") {
			break
		}
	}
	if got != "subscribe subs://a; unsubscribe subs://a" {
		t.Fatalf("after the last session ended the upstream saw: %s", got)
	}
}

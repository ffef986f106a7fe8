package proxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
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
)

// elicitingUpstream is a 2025-11-25 server whose tool asks the client
// (elicitation/create) before it answers.
func elicitingUpstream(t *testing.T) string {
	s := server.NewMCPServer("asker", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("confirm"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := server.ServerFromContext(ctx).RequestElicitation(ctx, mcp.ElicitationRequest{Params: mcp.ElicitationParams{
			Message: "Go ahead?", RequestedSchema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}}}`),
		}})
		if err != nil {
			return mcp.NewToolResultError("elicitation failed: " + err.Error()), nil
		}
		return mcp.NewToolResultText("answered " + string(res.Action) + " " + toJSON(res.Content)), nil
	})
	return serveUpstreamHTTP(t, s)
}

// TestModernClientLegacyUpstreamElicitation: a 2026-07-28 client calls a
// 2025-11-25 upstream that asks for input. The client cannot take the
// upstream's elicitation/create, so its call is answered input_required
// with the upstream's request (SEP-2322); its retry with the answer and the
// requestState reaches the upstream's pending request, and the upstream's
// result comes back. A requestState agentmesh did not issue is refused.
func TestModernClientLegacyUpstreamElicitation(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "ask", URL: elicitingUpstream(t)}, "")
	url := serveHTTP(t, rt)
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "ask__confirm"}
	meta := strings.Replace(modernMeta, `"io.modelcontextprotocol/clientCapabilities":{}`, `"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}`, 1)
	ms := messages(t, url, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask__confirm",`+meta+`}}`, h)
	res, _ := ms[len(ms)-1]["result"].(map[string]any)
	state, _ := res["requestState"].(string)
	if res == nil || res["resultType"] != "input_required" || state == "" || !strings.Contains(toJSON(res["inputRequests"]), `"Go ahead?"`) {
		t.Fatalf("the first call: %v", ms)
	}
	retry := func(id int, state string) map[string]any {
		ms := messages(t, url, `{"jsonrpc":"2.0","id":`+itoa(id)+`,"method":"tools/call","params":{"name":"ask__confirm","requestState":`+toJSON(state)+`,`+
			`"inputResponses":{"upstream":{"action":"accept","content":{"ok":true}}},`+meta+`}}`, h)
		res, _ := ms[len(ms)-1]["result"].(map[string]any)
		return res
	}
	if res := retry(2, "agentmesh-round:forged"); res == nil || res["isError"] != true {
		t.Fatalf("a retry with a made-up requestState: %v", res)
	}
	res = retry(3, state)
	if res == nil || res["isError"] == true || !strings.Contains(toJSON(res["content"]), `answered accept {\"ok\":true}`) {
		t.Fatalf("the retry: %v", res)
	}
	entries, err := rt.Log.List(context.Background(), auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	relayed := false
	for _, e := range entries {
		relayed = relayed || e.Entry.Action == audit.ActionUpstreamRequest && strings.Contains(string(e.Entry.Details), `"outcome":"relayed"`)
	}
	if !relayed {
		t.Errorf("the upstream's elicitation is not recorded as relayed")
	}
}

// modernSubscriptionsUpstream speaks MCP 2026-07-28 only and offers
// resource subscriptions, which that revision asks for with
// subscriptions/listen. update sends notifications/resources/updated for
// uri on the newest listen stream; filters are the filters of the listens
// it was sent, in order.
func modernSubscriptionsUpstream(t *testing.T) (url string, update func(uri string), filters func() []string) {
	var mu sync.Mutex
	var stream server.ClientSession
	var seen []string
	hooks := &server.Hooks{}
	hooks.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		var m struct {
			Method string `json:"method"`
			Params struct {
				Notifications json.RawMessage `json:"notifications"`
			} `json:"params"`
		}
		raw, _ := message.(json.RawMessage)
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		switch m.Method {
		case "initialize":
			return errors.New("initialize was removed in 2026-07-28: use server/discover")
		case "subscriptions/listen":
			mu.Lock()
			stream = server.ClientSessionFromContext(ctx)
			seen = append(seen, string(m.Params.Notifications))
			mu.Unlock()
		}
		return nil
	})
	s := server.NewMCPServer("modern-subs", "1.0.0", server.WithResourceCapabilities(true, false), server.WithHooks(hooks))
	s.AddResource(mcp.NewResource("subs://a", "a"), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "subs://a", Text: "a"}}, nil
	})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	update = func(uri string) {
		mu.Lock()
		defer mu.Unlock()
		stream.NotificationChannel() <- mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
			Method: "notifications/resources/updated", Params: mcp.NotificationParams{AdditionalFields: map[string]any{"uri": uri}}}}
	}
	filters = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	return ts.URL + "/mcp", update, filters
}

// TestModernUpstreamSubscriptions: a client's resources/subscribe to a
// resource of a 2026-07-28-only upstream opens a subscriptions/listen for
// its URI there; the upstream's notifications/resources/updated reach the
// subscribed client; unsubscribing closes the listen, and the next
// subscription opens a new one for what is subscribed then.
func TestModernUpstreamSubscriptions(t *testing.T) {
	url, update, filters := modernSubscriptionsUpstream(t)
	rt := openRuntime(t, config.Upstream{Name: "ms", URL: url}, "")
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
	init.Params.ProtocolVersion = "2025-11-25" // resources/subscribe
	init.Params.ClientInfo = mcp.Implementation{Name: "subscriber", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	updated := make(chan string, 10)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/resources/updated" {
			updated <- strings.Trim(toJSON(n.Params.AdditionalFields["uri"]), `"`)
		}
	})
	sub := mcp.SubscribeRequest{}
	sub.Params.URI = "subs://a"
	if err := c.Subscribe(ctx, sub); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if got := filters(); len(got) != 1 || got[0] != `{"resourceSubscriptions":["subs://a"]}` {
		t.Fatalf("the upstream's subscriptions/listen filters: %v", got)
	}
	update("subs://a")
	select {
	case uri := <-updated:
		if uri != "subs://a" {
			t.Fatalf("updated %s", uri)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream's notifications/resources/updated did not reach the subscribed client")
	}
	unsub := mcp.UnsubscribeRequest{}
	unsub.Params.URI = "subs://a"
	if err := c.Unsubscribe(ctx, unsub); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	// The next subscription opens a listen of its own (a listen's filter
	// is fixed): the closed one named only subs://a.
	sub.Params.URI = "subs://b"
	if err := c.Subscribe(ctx, sub); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if got := strings.Join(filters(), " "); got != `{"resourceSubscriptions":["subs://a"]} {"resourceSubscriptions":["subs://b"]}` {
		t.Fatalf("the upstream's subscriptions/listen filters: %s", got)
	}
}

package proxy_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

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
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp"
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

package mcpserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
)

// TestMalformedToolCallsAreAudited: mcp-go answers a tools/call it cannot
// parse with a JSON-RPC error before any handler runs; the attempt is still
// recorded, as an error with the parse failure as the reason.
func TestMalformedToolCallsAreAudited(t *testing.T) {
	rt := openTestRuntime(t, "malformed")
	ctx := context.Background()
	rt.MCP.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	for _, msg := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":5}}`,
	} {
		resp, _ := json.Marshal(rt.MCP.HandleMessage(ctx, []byte(msg)))
		if !strings.Contains(string(resp), `"code":-32600`) {
			t.Fatalf("%s: answered %s, want an invalid-request error", msg, resp)
		}
	}
	entries, err := rt.Log.List(ctx, auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Entry.Action == audit.ActionToolInvocation {
			n++
			if e.Entry.Result != audit.ResultError || !strings.HasPrefix(e.Entry.Reason, "malformed tools/call request: ") {
				t.Errorf("entry %d: %s %q", e.Entry.Seq, e.Entry.Result, e.Entry.Reason)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d tool_invocation entries, want 2", n)
	}
}

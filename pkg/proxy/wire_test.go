package proxy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRenamedKeepsEveryOtherMemberAsWritten(t *testing.T) {
	raw := json.RawMessage(`{"title":"T","name":"read","inputSchema":{"z":1,"a":{"$ref":"#/$defs/x"}},"x-extra":[1, 2.50]}`)
	got, err := renamed(raw, "name", "files__read")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"title":"T","name":"files__read","inputSchema":{"z":1,"a":{"$ref":"#/$defs/x"}},"x-extra":[1, 2.50]}`
	if string(got) != want {
		t.Fatalf("renamed:\n got %s\nwant %s", got, want)
	}
	if _, err := renamed(json.RawMessage(`[1]`), "name", "x"); err == nil {
		t.Fatal("renamed accepted an array")
	}
	added, _ := withMember(json.RawMessage(`{"b":1}`), "a", json.RawMessage(`false`))
	if string(added) != `{"b":1,"a":false}` {
		t.Fatalf("withMember: %s", added)
	}
}

// testProxy is a proxy with one upstream tool, prompt, resource and
// template, as refresh would leave it.
func testProxy(t *testing.T) *Proxy {
	p := New(Options{})
	u := &upstream{p: p}
	tool := json.RawMessage(`{"name":"files__echo","inputSchema":{"type":"object","properties":{"b":{},"a":{}}}}`)
	r := &route{up: u, tool: "echo", exposed: "files__echo", hash: "h", raw: tool}
	p.tools["files__echo"] = r
	p.approved.Store(approvedKey(r), struct{}{})
	p.prompts["files__brief"] = &promptRoute{up: u, name: "brief", raw: json.RawMessage(`{"name":"files__brief","arguments":[{"name":"tone","required":false}]}`)}
	p.rawResources["file:///a"] = json.RawMessage(`{"uri":"file:///a","name":"a","size":0}`)
	return p
}

func TestWireListsObjectsAsTheUpstreamWroteThem(t *testing.T) {
	p := testProxy(t)
	w := p.NewWire("stdio")
	w.FromClient([]byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`))
	// What mcp-go writes: members sorted, an empty annotations object, and
	// a built-in tool agentmesh leaves alone.
	out := w.ToClient([]byte(`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"annotations":{},"inputSchema":{"properties":{"a":{},"b":{}},"type":"object"},"name":"files__echo"},{"annotations":{},"name":"builtin"}],"nextCursor":"c"}}`))
	want := `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"files__echo","inputSchema":{"type":"object","properties":{"b":{},"a":{}}}},{"annotations":{},"name":"builtin"}],"nextCursor":"c"}}`
	if string(out) != want {
		t.Fatalf("tools/list:\n got %s\nwant %s", out, want)
	}
	// A response to a request the wire did not see is left alone.
	same := `{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"files__echo"}]}}`
	if out := w.ToClient([]byte(same)); string(out) != same {
		t.Fatalf("unrelated response rewritten: %s", out)
	}
	w.FromClient([]byte(`{"jsonrpc":"2.0","id":"p","method":"prompts/list"}`))
	out = w.ToClient([]byte(`{"jsonrpc":"2.0","id":"p","result":{"prompts":[{"arguments":[{"name":"tone"}],"name":"files__brief"}]}}`))
	if !strings.Contains(string(out), `"required":false`) {
		t.Fatalf("prompts/list lost required:false: %s", out)
	}
	w.FromClient([]byte(`{"jsonrpc":"2.0","id":3,"method":"resources/list"}`))
	out = w.ToClient([]byte(`{"jsonrpc":"2.0","id":3,"result":{"resources":[{"name":"a","uri":"file:///a"}]}}`))
	if !strings.Contains(string(out), `{"uri":"file:///a","name":"a","size":0}`) {
		t.Fatalf("resources/list: %s", out)
	}
}

func TestWireRelaysRawParamsAndKeepsTheClientsRawResult(t *testing.T) {
	p := testProxy(t)
	w := p.NewWire("stdio")
	params := json.RawMessage(`{"message":"Who?","requestedSchema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"}}}}`)
	slot := &relaySlot{params: params}
	p.relays.slots.Store("r1", slot)
	// mcp-go's typed request, marked, members sorted.
	out := w.ToClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":{"_meta":{"io.agentmesh/relay":"r1"},"message":"Who?","requestedSchema":{"properties":{"alpha":{"type":"number"},"zeta":{"type":"string"}},"type":"object"}}}`))
	want := `{"jsonrpc":"2.0","id":1,"method":"elicitation/create","params":` + string(params) + `}`
	if string(out) != want {
		t.Fatalf("relayed request:\n got %s\nwant %s", out, want)
	}
	w.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"result":{"action":"accept","content":{"zeta":"z","alpha":1}}}`))
	if got := string(slot.result); got != `{"action":"accept","content":{"zeta":"z","alpha":1}}` {
		t.Fatalf("the client's raw result was not kept: %s", got)
	}
	// An unmarked request (agentmesh's own approval form) passes unchanged.
	own := `{"jsonrpc":"2.0","id":2,"method":"elicitation/create","params":{"message":"Approve?","requestedSchema":{}}}`
	if out := w.ToClient([]byte(own)); string(out) != own {
		t.Fatalf("unmarked elicitation rewritten: %s", out)
	}
}

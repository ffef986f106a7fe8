package mcpserver

import (
	"net/http/httptest"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/proxy"
)

// TestWireWriterKeepsStreamsWhole: an SSE stream written in arbitrary
// pieces (mcp-go writes an event's id line on its own) comes out event by
// event, byte for byte where nothing is rewritten; a JSON body is held and
// written once with its status.
func TestWireWriterKeepsStreamsWhole(t *testing.T) {
	wire := proxy.New(proxy.Options{}).NewWire("s")
	stream := "id: 1\nretry: 500\ndata: \n\n" + "id: 2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n" + ": comment\n\n"
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/event-stream")
	ww := &wireWriter{w: rec, wire: wire}
	ww.WriteHeader(200)
	for i := 0; i < len(stream); i += 7 {
		end := min(i+7, len(stream))
		if _, err := ww.Write([]byte(stream[i:end])); err != nil {
			t.Fatal(err)
		}
		ww.Flush()
	}
	ww.finish()
	if got := rec.Body.String(); got != stream {
		t.Fatalf("stream:\n got %q\nwant %q", got, stream)
	}

	rec = httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/json")
	rec.Header().Set("Content-Length", "30")
	ww = &wireWriter{w: rec, wire: wire}
	ww.WriteHeader(202)
	ww.Write([]byte(`{"jsonrpc":"2.0",`))
	ww.Flush()
	if rec.Body.Len() != 0 {
		t.Fatal("a JSON body was written before the handler finished")
	}
	ww.Write([]byte(`"id":1,"result":{}}` + "\n"))
	ww.finish()
	if rec.Code != 202 || rec.Body.String() != `{"jsonrpc":"2.0","id":1,"result":{}}`+"\n" || rec.Header().Get("Content-Length") != "" {
		t.Fatalf("json: %d %q (Content-Length %q)", rec.Code, rec.Body.String(), rec.Header().Get("Content-Length"))
	}
}

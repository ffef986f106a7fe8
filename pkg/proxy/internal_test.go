package proxy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/config"
)

func TestPrefixWriterPrefixesWholeLines(t *testing.T) {
	var out strings.Builder
	w := &prefixWriter{w: &out, prefix: "[up] "}
	for _, chunk := range []string{"one\ntw", "o\r\n", "", "three", "\nfour"} {
		w.Write([]byte(chunk))
	}
	if got, want := out.String(), "[up] one\n[up] two\n[up] three\n"; got != want {
		t.Fatalf("before flush: %q, want %q", got, want)
	}
	w.flush()
	if got, want := out.String(), "[up] one\n[up] two\n[up] three\n[up] four\n"; got != want {
		t.Fatalf("after flush: %q, want %q", got, want)
	}
	// A line that never ends is emitted in bounded pieces.
	out.Reset()
	w.Write([]byte(strings.Repeat("x", 3*maxStderrLine)))
	if n := strings.Count(out.String(), "[up] "); n < 2 {
		t.Fatalf("an endless line produced %d prefixed pieces, want it split", n)
	}
}

func TestExposedToolKeepsRawSchemas(t *testing.T) {
	for _, tc := range []struct {
		name, raw     string
		wantIn        string
		wantOut       string
		wantErrSubstr string
	}{
		{"unknown keys kept", `{"name":"t","inputSchema":{"type":"object","x-a":[1,2],"$defs":{"d":{}}},"outputSchema":{"type":"object","x-b":true}}`,
			`{"type":"object","x-a":[1,2],"$defs":{"d":{}}}`, `{"type":"object","x-b":true}`, ""},
		{"missing input schema", `{"name":"t"}`, `{"type":"object"}`, "", ""},
		{"null output schema", `{"name":"t","inputSchema":{"type":"object"},"outputSchema":null}`, `{"type":"object"}`, "", ""},
		{"not an object", `[1]`, "", "", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tool, err := exposedTool(json.RawMessage(tc.raw), "up__t")
			if tc.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrSubstr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tool.Name != "up__t" {
				t.Errorf("name %q", tool.Name)
			}
			b, _ := json.Marshal(tool)
			var got map[string]any
			json.Unmarshal(b, &got)
			var wantIn any
			json.Unmarshal([]byte(tc.wantIn), &wantIn)
			if !reflect.DeepEqual(got["inputSchema"], wantIn) {
				t.Errorf("inputSchema %v, want %s", got["inputSchema"], tc.wantIn)
			}
			if tc.wantOut == "" {
				if _, ok := got["outputSchema"]; ok {
					t.Errorf("outputSchema %v, want none", got["outputSchema"])
				}
			} else {
				var wantOut any
				json.Unmarshal([]byte(tc.wantOut), &wantOut)
				if !reflect.DeepEqual(got["outputSchema"], wantOut) {
					t.Errorf("outputSchema %v, want %s", got["outputSchema"], tc.wantOut)
				}
			}
		})
	}
}

// FuzzExposedTool: any upstream tool object either is refused or becomes
// a tool that marshals, under the exposed name, with the upstream's input
// schema semantically unchanged.
func FuzzExposedTool(f *testing.F) {
	f.Add(`{"name":"t","inputSchema":{"type":"object","x":1}}`)
	f.Add(`{"name":"t","inputSchema":{"type":"object"},"outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"title":"T"}`)
	f.Add(`{"name":"t","inputSchema":"string"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		tool, err := exposedTool(json.RawMessage(raw), "up__t")
		if err != nil {
			return
		}
		b, err := json.Marshal(tool)
		if err != nil {
			t.Fatalf("accepted tool does not marshal: %v", err)
		}
		var got, orig map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got["name"] != "up__t" {
			t.Fatalf("name %v", got["name"])
		}
		if json.Unmarshal([]byte(raw), &orig) == nil {
			if in, ok := orig["inputSchema"]; ok && in != nil && !reflect.DeepEqual(got["inputSchema"], in) {
				t.Fatalf("inputSchema changed: %v -> %v", in, got["inputSchema"])
			}
		}
	})
}

func TestDecodeCallToolResult(t *testing.T) {
	for _, tc := range []struct {
		raw, err string
		blocks   int
	}{
		{`{"content":[{"type":"text","text":"hi"}],"structuredContent":{"a":1}}`, "", 1},
		{`{"content":[]}`, "", 0},
		{`{"isError":true,"content":[{"type":"text","text":"no"}]}`, "", 1},
		{`{}`, "content is missing", 0},
		{`{"content":null}`, "content is missing", 0},
		{`{"content":[{"type":"hologram"}]}`, "unknown content type", 0},
		{`[1]`, "cannot unmarshal", 0},
	} {
		res, err := decodeCallToolResult(json.RawMessage(tc.raw))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil || len(res.Content) != tc.blocks {
			t.Errorf("%s: %+v, %v", tc.raw, res, err)
		}
	}
}

// TestTaskStateForgetsTheOldestBeyondItsBound: a session never runs out
// of tasks; what it forgets first is its oldest, and other sessions keep
// theirs.
func TestTaskStateForgetsTheOldestBeyondItsBound(t *testing.T) {
	var ts taskState
	u := &upstream{cfg: config.Upstream{Name: "up"}}
	if err := ts.add(&taskRecord{id: "other", up: u, session: "b"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= maxTasksPerSession; i++ {
		if err := ts.add(&taskRecord{id: fmt.Sprint(i), up: u, session: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if ts.owned("a", "0") != nil || ts.owned("a", "1") == nil || ts.owned("a", fmt.Sprint(maxTasksPerSession)) == nil || ts.owned("b", "other") == nil {
		t.Fatal("the bound did not forget exactly the session's oldest task")
	}
	if ts.owned("b", "1") != nil {
		t.Fatal("a session owns another's task")
	}
	if err := ts.add(&taskRecord{id: "other", up: u, session: "a"}); err == nil {
		t.Fatal("a reused task id was accepted")
	}
	ts.forget("a")
	if ts.owned("a", "1") != nil || len(ts.ofSession("a")) != 0 || ts.owned("b", "other") == nil {
		t.Fatal("forget did not drop exactly the ended session's tasks")
	}
}

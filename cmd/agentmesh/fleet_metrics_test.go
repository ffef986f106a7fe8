package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/agentmesh/agentmesh/internal/otlptest"
	"github.com/agentmesh/agentmesh/pkg/audit"
)

var callsSample = regexp.MustCompile(`^agentmesh_calls_total\{result="([^"]*)",tool="([^"]*)",upstream="[^"]*"\} (\S+)$`)

// callsCounted scrapes a replica's /metrics and returns agentmesh_calls_total
// by "tool result".
func callsCounted(t *testing.T, r *replica) map[string]int {
	t.Helper()
	resp, err := http.Get(r.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", r.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scraping %s: %s", r.name, resp.Status)
	}
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := callsSample.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", r.name, sc.Text(), err)
			}
			out[m[2]+" "+m[1]] += int(v)
		}
	}
	return out
}

// TestFleetMetricsAndTraces: 3 replicas serve metrics and export traces.
// After allowed reads and lists, policy blocks and mistakes spread over
// them, agentmesh_calls_total summed over the replicas equals, by tool and
// result, the fleet's log's tool_invocation entries. A call carrying the
// client's traceparent in _meta is exported as a span of the client's
// trace, a child of the client's span.
func TestFleetMetricsAndTraces(t *testing.T) {
	sink := otlptest.NewReceiver(t)
	f := newFleet(t, "telemetry: {otlp_endpoint: \""+sink.URL+"\"}\n")
	f.dataFiles(1)
	f.write("policies/block.yaml", `policies:
  - name: fleet-block
    rules:
      - name: no-listing
        condition: "tool == 'filesystem_list'"
        action: block
        severity: low
        message: "listing is not allowed here"
`)
	reps := startThree(f, "--metrics", "127.0.0.1:0")
	var wg sync.WaitGroup
	for i, r := range reps {
		c := connect(t, r, "client-"+r.name, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 30+10*i; n++ {
				var res result
				switch n % 5 {
				case 0, 1, 2:
					res = c.read(0)
				case 3:
					res = c.call("filesystem_list", map[string]any{"path": "/data"})
				case 4:
					res = c.call("filesystem_read", map[string]any{"path": "/nowhere/x.txt"})
				}
				if res.err != nil {
					t.Errorf("call on %s: %s", r.name, res)
				}
			}
		}()
	}
	wg.Wait()

	const traceID, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	c := connect(t, reps[1], "traced-client", nil)
	meta := &mcp.Meta{AdditionalFields: map[string]any{"traceparent": "00-" + traceID + "-" + clientSpan + "-01"}}
	if res := c.callMeta("filesystem_read", map[string]any{"path": filePath(0)}, meta); !res.ok() {
		t.Fatalf("the traced call: %s", res)
	}

	counted := map[string]int{}
	for _, r := range reps {
		for k, v := range callsCounted(t, r) {
			counted[k] += v
		}
	}
	logged := map[string]int{}
	for _, e := range f.auditLog() {
		if e.Action == audit.ActionToolInvocation {
			logged[e.Tool+" "+string(e.Result)]++
		}
	}
	t.Logf("calls by tool and result: metrics %v, log %v", counted, logged)
	if fmt.Sprint(counted) != fmt.Sprint(logged) {
		t.Errorf("agentmesh_calls_total over the replicas %v, the log's tool_invocation entries %v", counted, logged)
	}
	if len(logged) < 3 {
		t.Errorf("want allowed and blocked calls of both tools in the log: %v", logged)
	}

	// Spans are batched for at most 1 s; wait for the call's.
	var root *tracepb.Span
	for deadline := time.Now().Add(10 * time.Second); root == nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, sp := range sink.InTrace(traceID) {
			if sp.Name == "tools/call filesystem_read" {
				root = sp
			}
		}
	}
	if root == nil {
		n := len(sink.Spans())
		t.Fatalf("no tools/call span in the client's trace within 10 s; %d spans received", n)
	}
	if got := hex.EncodeToString(root.ParentSpanId); got != clientSpan {
		t.Errorf("the tools/call span's parent is %s, want the client's span %s", got, clientSpan)
	}
	if n := len(sink.InTrace(traceID)); n < 2 {
		t.Errorf("%d spans in the client's trace, want the call's span and its children", n)
	}
}

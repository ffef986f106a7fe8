package main

import (
	"bufio"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// spanSink is an OTLP/HTTP trace receiver on loopback: it keeps the spans
// of every ExportTraceServiceRequest posted to /v1/traces.
type spanSink struct {
	URL   string
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newSpanSink(t *testing.T) *spanSink {
	s := &spanSink{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != "POST" || req.URL.Path != "/v1/traces" {
			t.Errorf("OTLP request %s %s", req.Method, req.URL.Path)
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var export coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &export); err != nil {
			t.Errorf("decoding an OTLP export: %v", err)
			return
		}
		s.mu.Lock()
		for _, rs := range export.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				s.spans = append(s.spans, ss.Spans...)
			}
		}
		s.mu.Unlock()
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(ts.Close)
	s.URL = ts.URL
	return s
}

// inTrace returns the spans received so far in the trace with this id.
func (s *spanSink) inTrace(id string) []*tracepb.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*tracepb.Span
	for _, sp := range s.spans {
		if hex.EncodeToString(sp.TraceId) == id {
			out = append(out, sp)
		}
	}
	return out
}

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
	sink := newSpanSink(t)
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
		for _, sp := range sink.inTrace(traceID) {
			if sp.Name == "tools/call filesystem_read" {
				root = sp
			}
		}
	}
	if root == nil {
		sink.mu.Lock()
		n := len(sink.spans)
		sink.mu.Unlock()
		t.Fatalf("no tools/call span in the client's trace within 10 s; %d spans received", n)
	}
	if got := hex.EncodeToString(root.ParentSpanId); got != clientSpan {
		t.Errorf("the tools/call span's parent is %s, want the client's span %s", got, clientSpan)
	}
	if n := len(sink.inTrace(traceID)); n < 2 {
		t.Errorf("%d spans in the client's trace, want the call's span and its children", n)
	}
}

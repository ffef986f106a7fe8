package metrics

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestObserveCallCountsAndBoundsLabels(t *testing.T) {
	m := New()
	m.ObserveCall(Call{Method: "tools/call", Tool: "filesystem_read", Known: true, Result: "allowed", Duration: time.Millisecond})
	m.ObserveCall(Call{Method: "tools/call", Tool: "filesystem_read", Known: true, Result: "allowed"})
	m.ObserveCall(Call{Method: "tools/call", Tool: "x-probe-1", Result: "blocked"})
	m.ObserveCall(Call{Method: "tools/call", Tool: "x-probe-2", Result: "blocked"})
	if got := counter(m.calls.WithLabelValues("filesystem_read", "", "allowed")); got != 2 {
		t.Errorf("allowed filesystem_read = %v, want 2", got)
	}
	if got := counter(m.calls.WithLabelValues(Unknown, "", "blocked")); got != 2 {
		t.Errorf("unknown tools = %v, want 2 (collapsed)", got)
	}
	// Beyond MaxTools distinct names, further tools count as unknown.
	for i := range MaxTools + 10 {
		m.ObserveCall(Call{Method: "tools/call", Tool: fmt.Sprintf("t%d", i), Known: true, Result: "allowed"})
	}
	if n := series(m.calls); n > MaxTools+2 {
		t.Errorf("%d series, want at most %d", n, MaxTools+2)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`mcp_server_operation_duration_seconds_count{gen_ai_tool_name="filesystem_read",mcp_method_name="tools/call",result="allowed"} 2`, "agentmesh_decision_duration_seconds_count", "go_goroutines"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.ObserveCall(Call{Tool: "x"})
	m.Committed(1, time.Second)
	m.Revoked()
	m.RateLimitHit("r")
	m.UpstreamRestarted("u")
	m.ToolPinChanged("u", 1)
	m.Watch(Gauges{AuditQueueDepth: func() float64 { return 0 }})
}

// BenchmarkObserveCall is the per-call cost of metrics on the governed
// path (one histogram, one counter, the decision histogram).
func BenchmarkObserveCall(b *testing.B) {
	m := New()
	c := Call{Method: "tools/call", Tool: "filesystem_read", Known: true, Result: "allowed", Duration: 300 * time.Microsecond, Decision: 50 * time.Microsecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveCall(c)
		}
	})
}

func counter(c prometheus.Counter) float64 {
	var d dto.Metric
	c.Write(&d)
	return d.GetCounter().GetValue()
}

func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 4096)
	c.Collect(ch)
	close(ch)
	return len(ch)
}

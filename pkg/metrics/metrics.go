// Package metrics is agentmesh's Prometheus instrumentation: what the
// pipeline, the audit log, trust and the proxy report, on a private
// registry served by a separate listener (http.metrics_addr). Names and
// labels follow the OpenTelemetry semantic conventions for MCP
// (mcp.method.name, gen_ai.tool.name, as mcp_method_name and
// gen_ai_tool_name) and the Prometheus naming rules (base units, _total
// counters). Every label value is bounded: tool names are the ones the
// server resolves (built-in tools, upstream catalogs), at most MaxTools of
// them, anything else is "unknown"; results are the audit log's.
//
// A nil *Metrics is valid and records nothing, so callers need no checks
// when metrics are off.
package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxTools bounds the distinct gen_ai_tool_name / tool label values; calls
// to further tools are counted as "unknown".
const MaxTools = 512

// Unknown is the tool label of a call to a tool the server does not know.
const Unknown = "unknown"

// Metrics holds the collectors of one server.
type Metrics struct {
	reg *prometheus.Registry

	operation   *prometheus.HistogramVec
	calls       *prometheus.CounterVec
	decision    prometheus.Histogram
	commit      prometheus.Histogram
	perCommit   prometheus.Histogram
	revocations prometheus.Counter
	rateLimit   *prometheus.CounterVec
	restarts    *prometheus.CounterVec
	pinChanges  *prometheus.CounterVec

	// series caches the children of one label combination: a call costs
	// a map lookup, not a label hash and a lock in client_golang.
	series sync.Map // seriesKey -> *callSeries
	tools  atomic.Int64
}

type seriesKey struct{ method, tool, upstream, result string }

type callSeries struct {
	operation prometheus.Observer
	calls     prometheus.Counter
}

// Buckets of the call and decision histograms: from 100 µs (a cached
// decision) to 30 s (a slow upstream).
var callBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New returns metrics on a registry of their own (never the global one:
// tests and embedding programs may run several servers in one process),
// with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.operation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mcp_server_operation_duration_seconds", Help: "Duration of MCP requests the server governed, from arrival to result (OpenTelemetry mcp.server.operation.duration).",
		Buckets: callBuckets,
	}, []string{"mcp_method_name", "gen_ai_tool_name", "result"})
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentmesh_calls_total", Help: "Governed calls by tool, upstream (empty for built-in tools) and audit result.",
	}, []string{"tool", "upstream", "result"})
	m.decision = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "agentmesh_decision_duration_seconds", Help: "Time the pipeline spent before the tool ran (or before it refused the call): trust, credential, guards, scopes, pre-call policy, write-ahead intent.",
		Buckets: callBuckets,
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "agentmesh_audit_commit_duration_seconds", Help: "Duration of one audit log commit (one transaction, one signed checkpoint).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	m.perCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "agentmesh_audit_entries_per_commit", Help: "Entries written by one audit log commit (group commit and audit.batch_window).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	m.revocations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agentmesh_trust_revocations_total", Help: "Times a caller's trust fell below trust.revoke_below and access was revoked.",
	})
	m.rateLimit = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentmesh_rate_limit_hits_total", Help: "Calls refused by a policy rule's limit, by rule.",
	}, []string{"rule"})
	m.restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentmesh_upstream_restarts_total", Help: "Restarts of an upstream MCP server after its session ended.",
	}, []string{"upstream"})
	m.pinChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agentmesh_tool_pin_changes_total", Help: "Upstream tool definitions that changed against their pins (changed, new, removed, restored, renamed).",
	}, []string{"upstream"})
	m.reg.MustRegister(m.operation, m.calls, m.decision, m.commit, m.perCommit, m.revocations, m.rateLimit, m.restarts, m.pinChanges,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the private registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Call is one governed call as the metrics see it.
type Call struct {
	// Method is the MCP method (tools/call, resources/read, prompts/get).
	Method string
	// Tool is the name the client used; Known says the server resolved it
	// (a configured built-in tool or an upstream's), else it is counted
	// as "unknown".
	Tool     string
	Known    bool
	Upstream string
	// Result is the audit result (allowed, blocked, redacted, withheld,
	// error).
	Result string
	// Duration is the whole call; Decision the time before the tool ran
	// (or before the refusal).
	Duration, Decision time.Duration
}

// ObserveCall records one call.
func (m *Metrics) ObserveCall(c Call) {
	if m == nil {
		return
	}
	tool := c.Tool
	if !c.Known || tool == "" {
		tool = Unknown
	}
	k := seriesKey{c.Method, tool, c.Upstream, c.Result}
	s, ok := m.series.Load(k)
	if !ok {
		s = m.newSeries(k)
	}
	cs := s.(*callSeries)
	cs.operation.Observe(c.Duration.Seconds())
	cs.calls.Inc()
	m.decision.Observe(c.Decision.Seconds())
}

func (m *Metrics) newSeries(k seriesKey) any {
	if k.tool != Unknown && m.tools.Add(1) > MaxTools {
		k.tool = Unknown
		if s, ok := m.series.Load(k); ok {
			return s
		}
	}
	s, _ := m.series.LoadOrStore(k, &callSeries{
		operation: m.operation.WithLabelValues(k.method, k.tool, k.result),
		calls:     m.calls.WithLabelValues(k.tool, k.upstream, k.result),
	})
	return s
}

// Committed records one audit commit of entries entries.
func (m *Metrics) Committed(entries int, d time.Duration) {
	if m == nil {
		return
	}
	m.commit.Observe(d.Seconds())
	m.perCommit.Observe(float64(entries))
}

// Revoked records a revocation of access by trust.
func (m *Metrics) Revoked() {
	if m != nil {
		m.revocations.Inc()
	}
}

// RateLimitHit records a call refused by rule's limit.
func (m *Metrics) RateLimitHit(rule string) {
	if m != nil {
		m.rateLimit.WithLabelValues(rule).Inc()
	}
}

// UpstreamRestarted records a restart of an upstream.
func (m *Metrics) UpstreamRestarted(upstream string) {
	if m != nil {
		m.restarts.WithLabelValues(upstream).Inc()
	}
}

// ToolPinChanged records n changes of upstream's tool definitions.
func (m *Metrics) ToolPinChanged(upstream string, n int) {
	if m != nil && n > 0 {
		m.pinChanges.WithLabelValues(upstream).Add(float64(n))
	}
}

// Gauges are read when scraped, from the parts that know the values.
type Gauges struct {
	// AuditQueueDepth is how many entries wait for a batched commit
	// (audit.batch_window).
	AuditQueueDepth func() float64
	// WitnessLag is how many entries the witness copy is behind the log.
	WitnessLag func() float64
}

// Watch registers the gauges that are set (once per Metrics).
func (m *Metrics) Watch(g Gauges) {
	if m == nil {
		return
	}
	if g.AuditQueueDepth != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agentmesh_audit_queue_depth", Help: "Audit entries queued and not yet committed (a batched commit's, audit.batch_window; or the appends waiting for a fleet replica's committer).",
		}, g.AuditQueueDepth))
	}
	if g.WitnessLag != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agentmesh_audit_witness_lag_entries", Help: "Entries committed to the audit log that the witness copy does not cover yet (it is written coalesced, off the call path).",
		}, g.WitnessLag))
	}
}

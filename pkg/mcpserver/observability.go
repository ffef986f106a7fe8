package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentmesh/agentmesh/pkg/metrics"
)

// Observability (docs/observability.md): Prometheus metrics and health on
// a listener of their own (http.metrics_addr, serve --metrics), and
// OpenTelemetry traces exported over OTLP/HTTP (telemetry.otlp_endpoint or
// OTEL_EXPORTER_OTLP_ENDPOINT).

// openMetrics creates the collectors when metrics are on, and registers
// the gauges read from the log.
func (rt *Runtime) openMetrics() {
	if !rt.opts.Metrics && rt.Cfg.HTTP.MetricsAddr == "" {
		return
	}
	rt.Metrics = metrics.New()
}

func (rt *Runtime) watchLog() {
	if rt.Metrics == nil {
		return
	}
	l := rt.Log
	rt.Metrics.Watch(metrics.Gauges{
		AuditQueueDepth: func() float64 { return float64(l.QueueDepth()) },
		WitnessLag:      func() float64 { return float64(l.WitnessLag()) },
	})
}

// otlpEndpoint is where spans go: the configuration, else the standard
// environment variables (which the exporter then reads itself).
func (rt *Runtime) otlpEndpoint() (endpoint string, fromEnv bool) {
	if e := rt.Cfg.Telemetry.OTLPEndpoint; e != "" {
		return e, false
	}
	for _, v := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		if e := os.Getenv(v); e != "" {
			return e, true
		}
	}
	return "", false
}

// openTracer starts the OTLP/HTTP exporter when an endpoint is set; with
// none there is no tracer, and calls make no spans at all.
func (rt *Runtime) openTracer(ctx context.Context) error {
	endpoint, fromEnv := rt.otlpEndpoint()
	if endpoint == "" {
		return nil
	}
	var opts []otlptracehttp.Option
	if !fromEnv {
		// OTLP/HTTP posts spans to /v1/traces under the collector's URL.
		u := strings.TrimSuffix(endpoint, "/")
		if !strings.HasSuffix(u, "/v1/traces") {
			u += "/v1/traces"
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return fmt.Errorf("telemetry.otlp_endpoint %s: %w", endpoint, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "agentmesh"), attribute.String("service.version", rt.version()),
		attribute.String("service.instance.id", rt.ID.DID()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)), sdktrace.WithResource(res))
	rt.tracer = tp.Tracer("github.com/agentmesh/agentmesh")
	rt.closers = append(rt.closers, func() error {
		// Spans still queued are sent before the process ends.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tp.Shutdown(sctx)
	})
	return nil
}

// Tracer is the tracer calls are traced with; nil when tracing is off.
func (rt *Runtime) Tracer() trace.Tracer { return rt.tracer }

// Check is one readiness check.
type Check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Ready runs the readiness checks: the state database answers a trivial
// query, the audit log accepts appends (not latched tampered, no failed
// batched commit), and every configured upstream has a session.
func (rt *Runtime) Ready(ctx context.Context) []Check {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	db := Check{Name: "database", OK: true}
	if err := rt.store.ping(ctx); err != nil {
		db.OK, db.Error = false, err.Error()
	}
	checks := []Check{db}
	a := Check{Name: "audit_log", OK: true}
	if err := rt.store.failure(); err != nil {
		a.OK, a.Error = false, err.Error()
	}
	checks = append(checks, a)
	if rt.Proxy != nil {
		down := rt.Proxy.NotStarted()
		names := make([]string, 0, len(rt.Cfg.Upstreams))
		for _, u := range rt.Cfg.Upstreams {
			names = append(names, u.Name)
		}
		sort.Strings(names)
		for _, n := range names {
			c := Check{Name: "upstream:" + n, OK: true}
			if why, ok := down[n]; ok {
				c.OK, c.Error = false, why
			}
			checks = append(checks, c)
		}
	}
	return checks
}

// MetricsHandler serves /metrics (when metrics are on), /healthz (the
// process answers) and /readyz (Ready: 200, or 503 naming each failing
// check).
func (rt *Runtime) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	if rt.Metrics != nil {
		mux.Handle("GET /metrics", rt.Metrics.Handler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		checks := rt.Ready(r.Context())
		body := struct {
			Status string  `json:"status"`
			Checks []Check `json:"checks"`
			Failed []Check `json:"failed,omitempty"`
		}{Status: "ready", Checks: checks}
		for _, c := range checks {
			if !c.OK {
				body.Failed = append(body.Failed, c)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if len(body.Failed) > 0 {
			body.Status = "not ready"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body)
	})
	return mux
}

// ServeMetrics serves MetricsHandler on ln until ctx ends.
func (rt *Runtime) ServeMetrics(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: rt.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: log.New(rt.opts.Stderr, "agentmesh: metrics: ", 0)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

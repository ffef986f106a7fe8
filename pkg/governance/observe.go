package governance

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/metrics"
)

// Observability of a call: Prometheus metrics (Options.Metrics) and
// OpenTelemetry spans (Options.Tracer). With both off a call pays one nil
// check.
//
// Spans (docs/observability.md): "tools/call {tool}" for the whole call,
// a child of the client's span when the request's params._meta carries a
// W3C traceparent (the MCP convention), with children "policy" (the checks
// before the tool), "execute_tool {tool}" (the tool, or the upstream it is
// forwarded to, which gets this span as its traceparent) and
// "audit.commit".

// callObs is what one call measures.
type callObs struct {
	p       *Pipeline
	began   time.Time
	decided time.Duration
	span    trace.Span // nil without a tracer
}

// traceContext is the W3C Trace Context propagator (traceparent,
// tracestate).
var traceContext propagation.TraceContext

// WithTraceParent returns ctx carrying the remote span context given in an
// MCP request's _meta (traceparent, tracestate), so the call's span joins
// the client's trace. Without a tracer it returns ctx unchanged.
func (p *Pipeline) WithTraceParent(ctx context.Context, meta *mcp.Meta) context.Context {
	if p.opts.Tracer == nil || meta == nil {
		return ctx
	}
	tp, _ := meta.AdditionalFields["traceparent"].(string)
	if tp == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": tp}
	if ts, ok := meta.AdditionalFields["tracestate"].(string); ok {
		carrier["tracestate"] = ts
	}
	return traceContext.Extract(ctx, carrier)
}

// InjectTraceParent adds the current span's traceparent (and tracestate)
// to an outgoing request's _meta, so an upstream's spans join the trace.
func InjectTraceParent(ctx context.Context, meta map[string]any) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	for k, v := range carrier {
		meta[k] = v
	}
}

// observe starts measuring a call; nil when metrics and traces are off.
func (p *Pipeline) observe(ctx context.Context, c Call) (context.Context, *callObs) {
	if p.opts.Metrics == nil && p.opts.Tracer == nil {
		return ctx, nil
	}
	ob := &callObs{p: p, began: time.Now()}
	if p.opts.Tracer != nil {
		method := c.Method
		if method == "" {
			method = string(mcp.MethodToolsCall)
		}
		name := method
		if c.Tool != "" && method != string(mcp.MethodResourcesRead) {
			name += " " + c.Tool // a URI is no span name: unbounded
		}
		attrs := []attribute.KeyValue{attribute.String("mcp.method.name", method), attribute.String("gen_ai.operation.name", "execute_tool")}
		if c.Tool != "" {
			attrs = append(attrs, attribute.String("gen_ai.tool.name", c.Tool))
		}
		if c.Upstream != "" {
			attrs = append(attrs, attribute.String("agentmesh.upstream", c.Upstream))
		}
		if who := caller.FromContext(ctx); who != nil {
			attrs = append(attrs, attribute.String("agentmesh.caller.id", who.ID))
		}
		ctx, ob.span = p.opts.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	}
	return ctx, ob
}

// phase starts a child span (nothing without a tracer); end ends it,
// marking it failed when err is set.
func (ob *callObs) phase(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if ob == nil || ob.span == nil {
		return ctx, func(error) {}
	}
	ctx, s := ob.p.opts.Tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

// decidedNow marks the end of the decision: the tool is about to run, or
// the call was refused.
func (ob *callObs) decidedNow() {
	if ob != nil && ob.decided == 0 {
		ob.decided = time.Since(ob.began)
	}
}

// done records the call's outcome; result is the audit result, or "error"
// when the audit append failed.
func (ob *callObs) done(c Call, o outcome, result string) {
	if ob == nil {
		return
	}
	ob.decidedNow()
	p := ob.p
	if o.limitRule != "" {
		p.opts.Metrics.RateLimitHit(o.limitRule)
	}
	method := c.Method
	if method == "" {
		method = string(mcp.MethodToolsCall)
	}
	p.opts.Metrics.ObserveCall(metrics.Call{Method: method, Tool: c.Tool, Known: c.Access != nil, Upstream: c.Upstream, Result: result,
		Duration: time.Since(ob.began), Decision: ob.decided})
	if ob.span != nil {
		ob.span.SetAttributes(attribute.String("agentmesh.result", result))
		if len(o.rules) > 0 {
			ob.span.SetAttributes(attribute.StringSlice("agentmesh.rules", o.rules))
		}
		if result == "error" {
			ob.span.SetStatus(codes.Error, o.reason)
		}
		ob.span.End()
	}
}

// Package proxy governs existing MCP servers: agentmesh starts (stdio) or
// connects to (streamable HTTP) each configured upstream, exposes its tools
// under a namespace as the upstream wrote them, forwards resources, prompts,
// logging, resource subscriptions, completions and tasks (tasks.go),
// relays the upstreams' elicitation and sampling requests to clients as
// raw JSON, and puts every tools/call (task-augmented or not, and the
// deferred result of a task), resources/read, prompts/get and
// completion/complete through the same governance pipeline as the
// built-in tools. The server declares
// the union of the upstreams' capabilities (capabilities.go).
//
// Each upstream tool's definition is pinned on first sight (pkg/toolpin);
// a changed, new or removed definition is refused until an operator
// approves it, and the model keeps seeing the approved definition until
// then, so a "rug pull" never reaches it.
//
// Protocol: MCP 2025-11-25 towards upstreams (initialize handshake,
// pagination, notifications/progress, notifications/cancelled,
// notifications/message, notifications/resources/updated,
// notifications/tasks/status, notifications/*/list_changed), and 2026-07-28 towards an upstream that
// has no initialize (server/discover, _meta on every request; conn.go).
package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Pins keeps the upstreams' tool definitions pinned (toolpin.Store on
// SQLite, pgtoolpin.Pins on PostgreSQL), recording changes in the audit
// log.
type Pins interface {
	// Observe records what an upstream lists now and returns the changes.
	Observe(ctx context.Context, upstream string, mode toolpin.Mode, seen []toolpin.Seen, others []string) ([]toolpin.Change, error)
	// Approved reports whether hash is the approved definition of tool.
	Approved(ctx context.Context, upstream, tool, hash string) (bool, error)
	// List returns an upstream's pins.
	List(ctx context.Context, upstream string) ([]toolpin.Pin, error)
}

// Options configure a Proxy.
type Options struct {
	Upstreams []config.Upstream
	Pins      Pins
	// Record appends an entry about the upstreams that no call's
	// pipeline records (upstream requests, log message counts) as Agent;
	// nil records nothing.
	Record func(ctx context.Context, e audit.Entry) error
	Agent  string
	// Pipeline governs resources/read and prompts/get; tools/call is
	// governed by the server's tool middleware through Resolve.
	Pipeline *governance.Pipeline
	// Reserved names (the built-in tools) an upstream tool may not take.
	Reserved []string
	Version  string
	// Stderr receives the upstreams' stderr, line by line, prefixed.
	Stderr io.Writer
	Warnf  func(format string, args ...any)
	// Redactor scans what upstreams send outside a governed call (log
	// messages, completion values go through Pipeline); nil passes them
	// unscanned.
	Redactor *redact.Redactor
	// Metrics, when set, count upstream restarts and tool pin changes.
	Metrics *metrics.Metrics
}

// Proxy is the set of governed upstreams behind one MCP server.
type Proxy struct {
	opts Options
	ups  []*upstream
	srv  *server.MCPServer

	mu        sync.RWMutex
	tools     map[string]*route // by exposed name
	resources map[string]*upstream
	templates map[string]*upstream
	prompts   map[string]*promptRoute

	approved sync.Map // approvedKey → struct{}
	progress sync.Map // our progress token → progressTarget
	tokens   atomic.Int64

	// offered is what the upstreams offered when the server started
	// (capabilities.go).
	offered offered
	// raw objects as the upstreams wrote them, for Wire: resources by
	// URI, templates by URI template; tools and prompts are in their
	// routes.
	rawResources map[string]json.RawMessage
	rawTemplates map[string]json.RawMessage
	templateURIs map[string]*mcp.URITemplate
	relays       relays   // elicitation and sampling in flight (requests.go)
	logs         logState // logging.go
	// completions are governed completion objects on their way to Wire:
	// by completionKey, then by session and request id (completion.go).
	completions sync.Map
	// sessionEnd are called when a client session ends (OnSessionEnd).
	sessionEndMu sync.Mutex
	sessionEnd   []func(string)
	subs         subState  // subscriptions.go
	tasks        taskState // tasks.go
	rounds       sync.Map  // requestState → *round (rounds.go)
	// answers are what agentmesh answered itself, for Wire: by session
	// and request id (tasks.go).
	answers sync.Map

	cancel context.CancelFunc
	wg     sync.WaitGroup
	first  sync.WaitGroup // first refresh of every upstream
}

// route is one upstream tool as exposed.
type route struct {
	up      *upstream
	tool    string // the upstream's own name
	exposed string
	hash    string
	def     mcp.Tool // as the upstream defines it, renamed
	raw     json.RawMessage
	pinned  *mcp.Tool
	// pinnedRaw is the approved definition shown while pinned is.
	pinnedRaw json.RawMessage
	pending   bool // not approved when last checked
	// taskSupport is the definition's execution.taskSupport (MCP
	// 2025-11-25, "Tasks: Tool-Level Negotiation"); tasks.go.
	taskSupport mcp.TaskSupport
}

type promptRoute struct {
	up   *upstream
	name string
	raw  json.RawMessage // as the upstream wrote it, renamed
}

// New returns a proxy for the configured upstreams; Start connects them.
func New(opts Options) *Proxy {
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	if opts.Warnf == nil {
		opts.Warnf = func(string, ...any) {}
	}
	p := &Proxy{opts: opts, tools: map[string]*route{}, resources: map[string]*upstream{}, templates: map[string]*upstream{}, prompts: map[string]*promptRoute{},
		rawResources: map[string]json.RawMessage{}, rawTemplates: map[string]json.RawMessage{}, templateURIs: map[string]*mcp.URITemplate{}}
	for _, u := range opts.Upstreams {
		p.ups = append(p.ups, newUpstream(p, u))
	}
	return p
}

func (p *Proxy) warnf(format string, args ...any) { p.opts.Warnf(format, args...) }

// ServerOptions are the mcp-go options the proxy needs: a tool filter that
// shows the approved definition of a tool whose upstream changed it, and
// the completion providers that forward completion/complete. The
// capabilities themselves are declared by Start, once the upstreams said
// what they offer.
func (p *Proxy) ServerOptions() []server.ServerOption {
	return []server.ServerOption{
		server.WithToolFilter(p.filterTools),
		server.WithPromptCompletionProvider(promptCompleter{p}),
		server.WithResourceCompletionProvider(resourceCompleter{p}),
	}
}

// Start connects every upstream in the background and waits (up to the
// start timeout) until each has listed its tools or failed once, so that a
// client's first tools/list sees them.
func (p *Proxy) Start(srv *server.MCPServer) {
	p.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.first.Add(len(p.ups))
	for _, u := range p.ups {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			u.run(ctx)
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.watchApprovals(ctx)
	}()
	done := make(chan struct{})
	go func() { p.first.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(startTimeout):
		p.warnf("some upstreams are still starting; their tools appear when they are ready")
	}
	p.declareCapabilities()
	p.installHooks()
}

// Close stops every upstream (closing stdin first) and waits for them.
func (p *Proxy) Close() {
	p.flushLogCounts()
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
}

// Upstreams returns the number of upstreams and of exposed tools.
func (p *Proxy) Upstreams() (upstreams, tools int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.ups), len(p.tools)
}

// Resolve gives the pipeline the route of a proxied tool: access
// mcp:<upstream>/<tool> (action call), refused while its definition is not
// the approved one.
func (p *Proxy) Resolve(name string) (governance.Route, bool) {
	p.mu.RLock()
	r, ok := p.tools[name]
	p.mu.RUnlock()
	if !ok {
		return governance.Route{}, false
	}
	return governance.Route{Upstream: r.up.cfg.Name, UpstreamTool: r.tool, Access: func(map[string]any) (tools.Access, error) {
		if err := p.checkPin(r); err != nil {
			return tools.Access{}, err
		}
		return tools.Access{Kind: scope.MCP, Target: r.up.cfg.Name + "/" + r.tool, Action: scope.Call, Changes: !r.readOnly()}, nil
	}}, true
}

// readOnly says a call of the tool cannot change anything, so it needs no
// write-ahead intent: the configuration lists it in read_only_tools, or
// trusts the upstream's annotations and its definition says readOnlyHint
// (calls go ahead only while that definition is the approved one, see
// checkPin). Anything else is assumed to have side effects.
func (r *route) readOnly() bool {
	for _, g := range r.up.cfg.ReadOnlyTools {
		if ok, _ := path.Match(g, r.tool); ok {
			return true
		}
	}
	if !r.up.cfg.TrustAnnotations {
		return false
	}
	hint := r.def.Annotations.ReadOnlyHint
	return hint != nil && *hint
}

func approvedKey(r *route) string { return r.up.cfg.Name + "\x00" + r.tool + "\x00" + r.hash }

// checkPin refuses a tool whose current definition is not approved. An
// approval is cached per definition hash; anything else is read from the
// state database on every call, so `agentmesh tools approve` in another
// process takes effect at once.
func (p *Proxy) checkPin(r *route) error {
	if _, ok := p.approved.Load(approvedKey(r)); ok {
		return nil
	}
	ok, err := p.opts.Pins.Approved(context.Background(), r.up.cfg.Name, r.tool, r.hash)
	if err != nil {
		return tools.Refuse("tool-pin", "the pin of %s could not be read, so it is refused: %v", r.exposed, err)
	}
	if ok {
		p.approved.Store(approvedKey(r), struct{}{})
		return nil
	}
	if r.pinned != nil {
		return tools.Refuse("tool-pin", "%s is blocked: upstream %s changed its definition since it was pinned (now %s); an operator must review `agentmesh tools diff %s` and run `agentmesh tools approve %s`",
			r.exposed, r.up.cfg.Name, r.hash, r.exposed, r.exposed)
	}
	return tools.Refuse("tool-pin", "%s is blocked: upstream %s added it after its tools were pinned (pin: strict); an operator must review `agentmesh tools diff %s` and run `agentmesh tools approve %s`",
		r.exposed, r.up.cfg.Name, r.exposed, r.exposed)
}

// filterTools shows, for a tool whose definition is not approved, the
// approved definition: the model never sees an unapproved description.
// (mcp-go also runs filters at call time; the name is kept, so the call
// still reaches the pipeline, which refuses it.)
func (p *Proxy) filterTools(_ context.Context, ts []mcp.Tool) []mcp.Tool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := ts[:0:0]
	for _, t := range ts {
		if r, ok := p.tools[t.Name]; ok && r.pinned != nil {
			if _, approved := p.approved.Load(approvedKey(r)); !approved {
				t = *r.pinned
			}
		}
		out = append(out, t)
	}
	return out
}

// refresh lists an upstream's tools, resources and prompts, records the
// tools against their pins, and updates what the server exposes.
func (p *Proxy) refresh(ctx context.Context, u *upstream, c *conn) error {
	defer u.firstDone()
	u.refreshing.Lock()
	defer u.refreshing.Unlock()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var errs []error
	if c.server.Capabilities.Tools != nil {
		if err := p.refreshTools(ctx, u, c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.server.Capabilities.Resources != nil {
		if err := p.refreshResources(ctx, u, c); err != nil {
			errs = append(errs, err)
		}
	}
	if c.server.Capabilities.Prompts != nil {
		if err := p.refreshPrompts(ctx, u, c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func (p *Proxy) refreshTools(ctx context.Context, u *upstream, c *conn) error {
	raws, err := listAll(ctx, c, "tools/list", "tools")
	if err != nil {
		return err
	}
	reserved := map[string]bool{}
	for _, n := range p.opts.Reserved {
		reserved[n] = true
	}
	p.mu.RLock()
	for name, r := range p.tools {
		if r.up != u {
			reserved[name] = true
		}
	}
	p.mu.RUnlock()
	var seen []toolpin.Seen
	routes := map[string]*route{}
	for _, raw := range raws {
		def, err := toolpin.FromRaw(raw)
		if err != nil {
			p.warnf("upstream %s: skipping a malformed tool definition: %v", u.cfg.Name, err)
			continue
		}
		t, err := exposedTool(raw, u.prefix+def.Name)
		if err != nil {
			p.warnf("upstream %s: skipping tool %q: %v", u.cfg.Name, def.Name, err)
			continue
		}
		if reserved[t.Name] {
			p.warnf("upstream %s: tool %q would be exposed as %s, which is already taken; it is not exposed (set a prefix)", u.cfg.Name, def.Name, t.Name)
			continue
		}
		rawT, err := renamed(raw, "name", t.Name)
		if err != nil {
			p.warnf("upstream %s: skipping tool %q: %v", u.cfg.Name, def.Name, err)
			continue
		}
		seen = append(seen, toolpin.Seen{Def: def, Exposed: t.Name})
		routes[t.Name] = &route{up: u, tool: def.Name, exposed: t.Name, hash: def.Hash(), def: t, raw: rawT, taskSupport: taskSupportOf(raw)}
	}
	mode := toolpin.Mode(u.cfg.Pin)
	if mode == "" {
		mode = toolpin.Strict
	}
	// Names from elsewhere a definition might try to shadow.
	others := make([]string, 0, len(reserved))
	for name := range reserved {
		others = append(others, name)
	}
	sort.Strings(others)
	changes, err := p.opts.Pins.Observe(ctx, u.cfg.Name, mode, seen, others)
	if err != nil {
		// Without pins nothing of this upstream can be vouched for.
		return err
	}
	changed := 0
	for _, ch := range changes {
		if ch.Kind != "pinned" { // a first sight is no change
			changed++
		}
		switch {
		case ch.Blocks():
			p.warnf("upstream %s: tool %s is %s and blocked until approved: see `agentmesh tools diff %s`", u.cfg.Name, ch.Exposed, ch.Kind, ch.Exposed)
		case ch.Kind == "removed":
			p.warnf("upstream %s: pinned tool %s was removed", u.cfg.Name, ch.Exposed)
		}
		for _, f := range ch.Findings {
			p.warnf("upstream %s: tool %s: possible tool poisoning (%s in %s): %s", u.cfg.Name, ch.Exposed, f.Rule, f.Field, f.Excerpt)
		}
	}
	p.opts.Metrics.ToolPinChanged(u.cfg.Name, changed)
	pins, err := p.opts.Pins.List(ctx, u.cfg.Name)
	if err != nil {
		return err
	}
	byTool := map[string]toolpin.Pin{}
	for _, pin := range pins {
		byTool[pin.Tool] = pin
	}
	var add []server.ServerTool
	for _, r := range routes {
		pin := byTool[r.tool]
		if pin.PinnedHash != r.hash {
			r.pending = true
			if pin.PinnedHash != "" {
				if def, err := toolpin.FromRaw(pin.PinnedDef); err == nil {
					if t, err := exposedTool(def.Canonical(), r.exposed); err == nil {
						r.pinned = &t
						r.pinnedRaw, _ = renamed(def.Canonical(), "name", r.exposed)
					}
				}
			}
		} else {
			p.approved.Store(approvedKey(r), struct{}{})
		}
		if r.pending && r.pinned == nil {
			continue // new and unapproved: not listed until approved
		}
		add = append(add, server.ServerTool{Tool: r.def, Handler: p.forwardTool(r)})
	}
	p.mu.Lock()
	var gone []string
	for name, r := range p.tools {
		if r.up == u {
			if _, ok := routes[name]; !ok {
				gone = append(gone, name)
			}
			delete(p.tools, name)
		}
	}
	for name, r := range routes {
		p.tools[name] = r
	}
	p.mu.Unlock()
	for _, r := range routes {
		if r.pending && r.pinned == nil {
			gone = append(gone, r.exposed)
		}
	}
	if len(gone) > 0 {
		p.srv.DeleteTools(gone...)
	}
	if len(add) > 0 {
		sort.Slice(add, func(i, j int) bool { return add[i].Tool.Name < add[j].Tool.Name })
		p.srv.AddTools(add...)
	}
	return nil
}

// exposedTool turns a raw upstream tool into the mcp-go tool exposed under
// name, with its input and output schemas passed through unchanged (mcp-go
// would drop schema keys it does not model).
func exposedTool(raw json.RawMessage, name string) (mcp.Tool, error) {
	var t mcp.Tool
	if err := json.Unmarshal(raw, &t); err != nil {
		return mcp.Tool{}, err
	}
	var schemas struct {
		In  json.RawMessage `json:"inputSchema"`
		Out json.RawMessage `json:"outputSchema"`
	}
	if err := json.Unmarshal(raw, &schemas); err != nil {
		return mcp.Tool{}, err
	}
	t.Name = name
	// mcp-go must not run a task-augmented call as a task of its own:
	// agentmesh relays it to the upstream (tasks.go). Clients see the
	// upstream's execution member in the raw listing.
	t.Execution = nil
	t.InputSchema, t.OutputSchema = mcp.ToolInputSchema{}, mcp.ToolOutputSchema{}
	t.RawInputSchema, t.RawOutputSchema = schemas.In, schemas.Out
	if len(t.RawInputSchema) == 0 || string(t.RawInputSchema) == "null" {
		t.RawInputSchema = json.RawMessage(`{"type":"object"}`)
	}
	if string(t.RawOutputSchema) == "null" {
		t.RawOutputSchema = nil
	}
	if _, err := json.Marshal(t); err != nil {
		return mcp.Tool{}, err
	}
	return t, nil
}

// taskSupportOf is a raw tool's execution.taskSupport; "" when absent.
func taskSupportOf(raw json.RawMessage) mcp.TaskSupport {
	var t struct {
		Execution struct {
			TaskSupport mcp.TaskSupport `json:"taskSupport"`
		} `json:"execution"`
	}
	json.Unmarshal(raw, &t)
	return t.Execution.TaskSupport
}

// watchApprovals notices `agentmesh tools approve` run in another process
// for tools this server holds back, and exposes them (clients get
// notifications/tools/list_changed).
func (p *Proxy) watchApprovals(ctx context.Context) {
	tick := time.NewTicker(approvalPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.RLock()
		var pending []*route
		for _, r := range p.tools {
			if r.pending {
				pending = append(pending, r)
			}
		}
		p.mu.RUnlock()
		var add []server.ServerTool
		for _, r := range pending {
			if ok, err := p.opts.Pins.Approved(ctx, r.up.cfg.Name, r.tool, r.hash); err == nil && ok {
				p.approved.Store(approvedKey(r), struct{}{})
				p.mu.Lock()
				r.pending = false
				p.mu.Unlock()
				add = append(add, server.ServerTool{Tool: r.def, Handler: p.forwardTool(r)})
			}
		}
		if len(add) > 0 {
			p.srv.AddTools(add...)
		}
	}
}

var approvalPoll = time.Second

// NotStarted names each upstream without a session now, with why
// (readiness: /readyz).
func (p *Proxy) NotStarted() map[string]string {
	out := map[string]string{}
	for _, u := range p.ups {
		if why := u.down(); why != "" {
			out[u.cfg.Name] = why
		}
	}
	return out
}

package proxy

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Logging (MCP 2025-11-25, "Server Utilities: Logging") through the proxy.
//
// Each client sets its own level with logging/setLevel; agentmesh keeps it
// and sets each upstream that declared logging to the lowest level any
// connected client asked for, so every client still gets what it asked
// for. An upstream's notifications/message goes, redacted, to the client
// whose call (tools/call, resources/read, prompts/get, completion/complete)
// is in progress on that upstream (the newest, as for elicitation: over
// stdio a notification names no request), or, outside any call, to every
// client that set a level. Each client only gets messages at or above its
// own level; a client that never set one gets every message of its calls.
// The messages are not audited; their counts are, per upstream, in an
// upstream_request entry (method notifications/message) when a client
// session ends and when agentmesh stops.

// logLevels orders the syslog severities MCP uses.
var logLevels = map[string]int{"debug": 0, "info": 1, "notice": 2, "warning": 3, "error": 4, "critical": 5, "alert": 6, "emergency": 7}

type logState struct {
	mu      sync.Mutex
	levels  map[string]string    // client session id → level it set
	sent    map[*upstream]string // level last set on each upstream
	counts  map[*upstream]*logCount
	setting sync.Mutex // serializes logging/setLevel to upstreams
}

type logCount struct {
	Relayed     int `json:"relayed"`
	BelowLevel  int `json:"below_level"`
	NoRecipient int `json:"no_recipient"`
	Withheld    int `json:"withheld"`
}

func (c *logCount) zero() bool { return *c == logCount{} }

func (s *logState) count(u *upstream, f func(*logCount)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[*upstream]*logCount{}
	}
	c := s.counts[u]
	if c == nil {
		c = &logCount{}
		s.counts[u] = c
	}
	f(c)
}

// setLevel records a client's level and lowers (or raises) the upstreams'
// levels to what the connected clients need.
func (p *Proxy) setLevel(session, level string) {
	p.logs.mu.Lock()
	if p.logs.levels == nil {
		p.logs.levels = map[string]string{}
	}
	p.logs.levels[session] = level
	p.logs.mu.Unlock()
	p.syncLogLevels()
}

// forgetLevel drops a client's level when its session ends.
func (p *Proxy) forgetLevel(session string) {
	p.logs.mu.Lock()
	_, had := p.logs.levels[session]
	delete(p.logs.levels, session)
	p.logs.mu.Unlock()
	if had {
		p.syncLogLevels()
	}
}

// wantedLevel is the lowest level a connected client set, "" if none did.
func (p *Proxy) wantedLevel() string {
	p.logs.mu.Lock()
	defer p.logs.mu.Unlock()
	want := ""
	for _, l := range p.logs.levels {
		if want == "" || logLevels[l] < logLevels[want] {
			want = l
		}
	}
	return want
}

// syncLogLevels sends logging/setLevel to each upstream whose level is not
// the wanted one. It waits for the answers, so that a client's setLevel
// takes effect upstream before the client hears back.
func (p *Proxy) syncLogLevels() {
	p.logs.setting.Lock()
	defer p.logs.setting.Unlock()
	want := p.wantedLevel()
	if want == "" {
		return // nobody asked: the upstreams keep their own defaults
	}
	for _, u := range p.ups {
		p.setUpstreamLevel(u, want, false)
	}
}

// setUpstreamLevel sets one upstream's level if it declared logging and
// (unless force) its level differs.
func (p *Proxy) setUpstreamLevel(u *upstream, level string, force bool) {
	c, ok := u.caps()
	if !ok || c.Logging == nil || u.isModern() {
		return // a 2026-07-28 upstream is told the level on each request
	}
	p.logs.mu.Lock()
	if p.logs.sent == nil {
		p.logs.sent = map[*upstream]string{}
	}
	same := p.logs.sent[u] == level
	p.logs.mu.Unlock()
	if same && !force {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := u.call(ctx, "logging/setLevel", map[string]any{"level": level}); err != nil {
		p.warnf("upstream %s: setting its log level to %s: %v", u.cfg.Name, level, err)
		return
	}
	p.logs.mu.Lock()
	p.logs.sent[u] = level
	p.logs.mu.Unlock()
}

// requestLogLevel is the log level a request to a 2026-07-28 upstream
// asks for (SEP-2575): the lowest any client set, or the calling 2026-07-28
// request's own if lower; "" for none (the upstream then sends none).
func (p *Proxy) requestLogLevel(ctx context.Context) string {
	level := p.wantedLevel()
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern && info.LogLevel != "" {
		if l := string(info.LogLevel); level == "" || logLevels[l] < logLevels[level] {
			level = l
		}
	}
	return level
}

// lowerLevel makes sure u sends messages at level and above, for a
// 2026-07-28 request that asked for them in its _meta (there is no
// logging/setLevel in that revision). The upstream's level is never raised
// for it again: other requests may want as much.
func (p *Proxy) lowerLevel(u *upstream, level string) {
	p.logs.mu.Lock()
	cur, set := p.logs.sent[u]
	p.logs.mu.Unlock()
	if set && logLevels[cur] <= logLevels[level] {
		return
	}
	p.logs.setting.Lock()
	defer p.logs.setting.Unlock()
	p.setUpstreamLevel(u, level, false)
}

// forwardLog relays one notifications/message of u (see the comment at the
// top of this file).
func (p *Proxy) forwardLog(u *upstream, fields map[string]any) {
	if p.srv == nil {
		return
	}
	level, _ := fields["level"].(string)
	raw, err := json.Marshal(fields)
	if err != nil {
		return
	}
	params, ok := p.redactLog(raw)
	if !ok {
		p.logs.count(u, func(c *logCount) { c.Withheld++ })
	}
	admits := func(session string, explicitOnly bool) bool {
		p.logs.mu.Lock()
		min, set := p.logs.levels[session]
		p.logs.mu.Unlock()
		if !set {
			return !explicitOnly
		}
		return logLevels[level] >= logLevels[min]
	}
	if call := u.newestCall(); call != nil {
		s := server.ClientSessionFromContext(call.ctx)
		if s == nil {
			p.logs.count(u, func(c *logCount) { c.NoRecipient++ })
			return
		}
		below := !admits(s.SessionID(), false)
		// MCP 2026-07-28 (SEP-2575): the level is the request's own, and a
		// request without one gets no log messages.
		if info := server.RequestProtocolInfoFromContext(call.ctx); info != nil && info.Modern {
			below = info.LogLevel == "" || logLevels[level] < logLevels[string(info.LogLevel)]
		}
		if below {
			p.logs.count(u, func(c *logCount) { c.BelowLevel++ })
			return
		}
		if p.srv.SendNotificationToClient(call.ctx, string(mcp.MethodNotificationMessage), params) == nil {
			call.notified.Store(true)
			p.logs.count(u, func(c *logCount) { c.Relayed++ })
		}
		return
	}
	p.logs.mu.Lock()
	var sessions []string
	for s := range p.logs.levels {
		sessions = append(sessions, s)
	}
	p.logs.mu.Unlock()
	for _, s := range sessions {
		if !admits(s, true) {
			p.logs.count(u, func(c *logCount) { c.BelowLevel++ })
			continue
		}
		if p.srv.SendNotificationToSpecificClient(s, string(mcp.MethodNotificationMessage), params) == nil {
			p.logs.count(u, func(c *logCount) { c.Relayed++ })
		}
	}
	if len(sessions) == 0 {
		p.logs.count(u, func(c *logCount) { c.NoRecipient++ })
	}
}

// redactLog returns a log message's params with secrets removed (pkg/redact,
// structurally: the message keeps its shape). ok is false when the message
// could not be scanned; its data is then withheld.
func (p *Proxy) redactLog(raw json.RawMessage) (map[string]any, bool) {
	out := raw
	ok := true
	if p.opts.Redactor != nil {
		r, _, err := p.opts.Redactor.RedactJSON(context.Background(), raw)
		if err != nil {
			ok = false
			var m map[string]any
			json.Unmarshal(raw, &m)
			m["data"] = "[withheld: agentmesh could not scan this log message for secrets]"
			out, _ = json.Marshal(m)
		} else {
			out = r
		}
	}
	fields, err := rawFields(out)
	if err != nil {
		return map[string]any{"level": "error", "data": "[withheld: malformed log message]"}, false
	}
	return fields, ok
}

// flushLogCounts records, per upstream, how many log messages were relayed
// or not since the last flush.
func (p *Proxy) flushLogCounts() {
	p.logs.mu.Lock()
	counts := p.logs.counts
	p.logs.counts = nil
	p.logs.mu.Unlock()
	if p.opts.Record == nil {
		return
	}
	for u, c := range counts {
		if c.zero() {
			continue
		}
		details, _ := json.Marshal(struct {
			Method  string `json:"method"`
			Outcome string `json:"outcome"`
			*logCount
		}{string(mcp.MethodNotificationMessage), "counted", c})
		if err := p.opts.Record(context.Background(), audit.Entry{
			Agent: p.opts.Agent, Action: audit.ActionUpstreamRequest, Upstream: u.cfg.Name, Details: details,
		}); err != nil {
			p.warnf("upstream %s: recording its log message counts: %v", u.cfg.Name, err)
		}
	}
}

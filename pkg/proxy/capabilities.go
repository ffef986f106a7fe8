package proxy

import (
	"encoding/json"

	"github.com/mark3labs/mcp-go/server"
)

// offered is the union of the capabilities the upstreams declared in
// initialize (MCP 2025-11-25, "Lifecycle: Capability Negotiation").
type offered struct {
	tools, resources, subscribe, prompts, logging, completions bool
	// tasks: some upstream accepts task-augmented tools/call (and
	// taskCancel: one of those also tasks/cancel); tasks.go.
	tasks, taskCancel bool
}

// union returns what the upstreams connected so far offer.
func (p *Proxy) union() offered {
	var o offered
	for _, u := range p.ups {
		c, ok := u.caps()
		if !ok {
			continue
		}
		o.tools = o.tools || c.Tools != nil
		o.resources = o.resources || c.Resources != nil
		o.subscribe = o.subscribe || c.Resources != nil && c.Resources.Subscribe
		o.prompts = o.prompts || c.Prompts != nil
		o.logging = o.logging || c.Logging != nil
		o.completions = o.completions || c.Completions != nil
		t := c.tasks()
		o.tasks = o.tasks || t.toolCalls
		o.taskCancel = o.taskCancel || t.toolCalls && t.cancel
	}
	return o
}

// declareCapabilities makes the server declare what the upstreams offer:
// tools, resources (with subscribe when an upstream offers it), prompts,
// logging and completions, each only if some upstream has it. agentmesh adds
// listChanged to tools, resources and prompts, because it tells clients
// when an upstream's catalog or a pin's approval changes what they see.
// Tasks are declared when some upstream accepts task-augmented tools/call
// (tasks.requests.tools.call), with list (answered by agentmesh from the
// session's own tasks) and cancel when such an upstream offers it
// (tasks.go). Without them, a tools/call's task member is ignored, as MCP
// 2025-11-25 ("Tasks: Task Support and Handling") asks of a receiver that
// does not declare the capability.
//
// It runs once, before the server serves (mcp-go's capability options are
// not safe to apply while serving); an upstream that starts later adds its
// tools, resources and prompts but not new capabilities.
func (p *Proxy) declareCapabilities() {
	o := p.union()
	var opts []server.ServerOption
	if o.tools {
		opts = append(opts, server.WithToolCapabilities(true))
	}
	if o.resources {
		opts = append(opts, server.WithResourceCapabilities(o.subscribe, true))
	}
	if o.prompts {
		opts = append(opts, server.WithPromptCapabilities(true))
	}
	if o.logging {
		opts = append(opts, server.WithLogging())
	}
	if o.completions {
		opts = append(opts, server.WithCompletions())
	}
	if o.tasks {
		opts = append(opts, server.WithTaskCapabilities(true, o.taskCancel, true))
	}
	for _, opt := range opts {
		opt(p.srv)
	}
	p.offered = o
}

// caps returns the capabilities of the upstream's current session, or of
// its last one; ok is false before it was ever initialized.
func (u *upstream) caps() (capabilities, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastCaps, u.everUp
}

// isModern says the upstream's session speaks MCP 2026-07-28 only.
func (u *upstream) isModern() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastModern
}

// taskCaps is what an upstream's tasks capability offers (MCP 2025-11-25,
// "Tasks: Server Capabilities").
type taskCaps struct{ toolCalls, list, cancel bool }

func (c capabilities) tasks() taskCaps {
	var t struct {
		List     *struct{} `json:"list"`
		Cancel   *struct{} `json:"cancel"`
		Requests *struct {
			Tools *struct {
				Call *struct{} `json:"call"`
			} `json:"tools"`
		} `json:"requests"`
	}
	if len(c.Tasks) == 0 || json.Unmarshal(c.Tasks, &t) != nil {
		return taskCaps{}
	}
	return taskCaps{toolCalls: t.Requests != nil && t.Requests.Tools != nil && t.Requests.Tools.Call != nil, list: t.List != nil, cancel: t.Cancel != nil}
}

package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Tasks (MCP 2025-11-25, "Utilities: Tasks") are relayed to the upstreams
// that accept task-augmented tools/call, and governed like every call.
//
// Where they are intercepted:
//
//   - A task-augmented tools/call takes the ordinary path: mcp-go's tool
//     middleware runs the whole pipeline (credential, scopes, trust,
//     pre-call policy, write-ahead intent for a tool that can change the
//     world), then forwardTool sends the call with its task member. The
//     upstream's CreateTaskResult cannot travel through mcp-go (a tool
//     handler returns a CallToolResult), so forwardTool records the task
//     (taskRecord: upstream, client session, tool, the governed call),
//     tells the pipeline the call was deferred (governance.Defer: audited
//     as "accepted as task <id>") and returns a placeholder marked with
//     taskMarker; Wire swaps the placeholder for the upstream's
//     CreateTaskResult, as written, on its way to the client.
//   - tasks/get, tasks/list, tasks/cancel and tasks/result are answered by
//     agentmesh before mcp-go dispatches them (an OnRequestInitialization
//     hook; mcp-go's own task store stays empty): only the session that
//     created a task may name it, anything else is a JSON-RPC error and
//     is never forwarded. tasks/list is the session's own tasks (each
//     asked with tasks/get). tasks/result goes through
//     governance.TaskResult: the deferred result gets the post-call
//     governance of a synchronous result and its own audit entry. The
//     hook stores the answer and fails the request with answerMarker;
//     Wire replaces that error by the stored answer.
//   - notifications/tasks/status from an upstream go to the session that
//     owns the task, redacted like log messages.
//
// A task-augmented call of a built-in tool, of a tool whose upstream does
// not accept tasks, or whose definition does not allow it
// (execution.taskSupport absent or "forbidden"), and a call without a task
// of a tool whose taskSupport is "required", are refused with -32601 and
// audited ("Tasks: Tool-Level Negotiation"). When no upstream accepts tasks, agentmesh declares none
// and a call's task member is ignored: the call runs synchronously
// ("Task Support and Handling"). Requests of the 2026-07-28 revision,
// which has no tasks/* methods of this shape, are left to mcp-go.
type taskState struct {
	mu   sync.Mutex
	byID map[string]*taskRecord
	// order is each session's task ids, oldest first.
	order map[string][]string
}

// taskRecord is one task an upstream accepted for a client session.
type taskRecord struct {
	id       string
	up       *upstream
	session  string
	deferred *governance.Deferred
	// created is the upstream's CreateTaskResult until Wire sent it.
	created json.RawMessage
}

// maxTasksPerSession bounds what one client session can make agentmesh
// remember: beyond it, its oldest task is forgotten (a long stdio session
// must not run out; the upstream may delete a task after its ttl anyway).
const maxTasksPerSession = 1000

// taskMarker marks the placeholder result of an accepted task, and
// answerMarker the error mcp-go sends for a request agentmesh answered;
// Wire replaces both.
const (
	taskMarker   = "io.agentmesh/task"
	answerMarker = "io.agentmesh/answered"
)

// relatedTask is the _meta key tying a message to its task.
const relatedTask = "io.modelcontextprotocol/related-task"

var errAnswered = errors.New(answerMarker)

func (t *taskState) add(r *taskRecord) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil {
		t.byID, t.order = map[string]*taskRecord{}, map[string][]string{}
	}
	if _, ok := t.byID[r.id]; ok {
		return fmt.Errorf("upstream %s answered with task id %q, which another task already has", r.up.cfg.Name, r.id)
	}
	t.byID[r.id] = r
	ids := append(t.order[r.session], r.id)
	for len(ids) > maxTasksPerSession {
		delete(t.byID, ids[0])
		ids = ids[1:]
	}
	t.order[r.session] = ids
	return nil
}

// owned returns the task id of session; nil for an unknown task or one
// of another session.
func (t *taskState) owned(session, id string) *taskRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.byID[id]; r != nil && r.session == session {
		return r
	}
	return nil
}

// takeCreated returns, once, the CreateTaskResult of session's task id.
func (t *taskState) takeCreated(session, id string) json.RawMessage {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.byID[id]
	if r == nil || r.session != session {
		return nil
	}
	c := r.created
	r.created = nil
	return c
}

func (t *taskState) ofSession(session string) []*taskRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*taskRecord
	for _, r := range t.byID {
		if r.session == session {
			out = append(out, r)
		}
	}
	return out
}

func (t *taskState) byUpstream(u *upstream, id string) *taskRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.byID[id]; r != nil && r.up == u {
		return r
	}
	return nil
}

// forget drops every task of a session that ended.
func (t *taskState) forget(session string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range t.order[session] {
		delete(t.byID, id)
	}
	delete(t.order, session)
}

func sessionOf(ctx context.Context) string {
	if s := server.ClientSessionFromContext(ctx); s != nil {
		return s.SessionID()
	}
	return ""
}

// taskAllowed says a task-augmented call of r may be forwarded: its
// upstream accepts task-augmented tools/call and the tool allows it.
func (r *route) taskAllowed() bool {
	c, ok := r.up.caps()
	return ok && c.tasks().toolCalls && (r.taskSupport == mcp.TaskSupportOptional || r.taskSupport == mcp.TaskSupportRequired)
}

// wantsTask says a tools/call asks to run as a task agentmesh relays.
func (p *Proxy) wantsTask(ctx context.Context, req mcp.CallToolRequest) bool {
	if req.Params.Task == nil || !p.offered.tasks {
		return false
	}
	info := server.RequestProtocolInfoFromContext(ctx)
	return info == nil || !info.Modern
}

// startTask forwards a task-augmented call (params ready, task member
// added here) and records the task the upstream created. The result is
// the placeholder Wire replaces; a result without a task (the upstream ran
// the call at once) is returned as it is.
func (p *Proxy) startTask(ctx context.Context, r *route, req mcp.CallToolRequest, params map[string]any, alive <-chan struct{}) (*mcp.CallToolResult, error) {
	session := sessionOf(ctx)
	if !r.taskAllowed() {
		return nil, fmt.Errorf("%s cannot run as a task", r.exposed)
	}
	params["task"] = req.Params.Task
	raw, err := r.up.callAlive(ctx, "tools/call", params, alive)
	if err != nil {
		return nil, err
	}
	var created struct {
		Task *struct {
			TaskID string `json:"taskId"`
		} `json:"task"`
	}
	if err := json.Unmarshal(raw, &created); err != nil || created.Task == nil {
		res, err := decodeCallToolResult(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %s sent a malformed tools/call result: %v", r.up.cfg.Name, err)
		}
		return res, nil
	}
	id := created.Task.TaskID
	cancelUpstream := func() {
		cctx, done := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		defer done()
		r.up.call(cctx, "tasks/cancel", map[string]any{"taskId": id})
	}
	d := governance.Defer(ctx, id)
	if d == nil || id == "" {
		cancelUpstream()
		return nil, fmt.Errorf("upstream %s created a task agentmesh cannot govern (id %q); it was cancelled", r.up.cfg.Name, id)
	}
	if err := p.tasks.add(&taskRecord{id: id, up: r.up, session: session, deferred: d, created: raw}); err != nil {
		cancelUpstream()
		return nil, fmt.Errorf("%v; the new task was cancelled", err)
	}
	res := mcp.NewToolResultText(fmt.Sprintf("task %s accepted by upstream %s", id, r.up.cfg.Name))
	res.Meta = &mcp.Meta{AdditionalFields: map[string]any{taskMarker: id}}
	return res, nil
}

// taskAnswer is a stored answer for Wire: a raw result or an error.
type taskAnswer struct {
	result json.RawMessage
	code   int
	msg    string
}

// interceptTask answers tasks/* requests, and refuses task-augmented calls
// agentmesh cannot relay, before mcp-go dispatches them (see taskState).
// It returns errAnswered when it stored the answer for Wire.
func (p *Proxy) interceptTask(ctx context.Context, raw json.RawMessage) error {
	if !p.offered.tasks || !bytes.Contains(raw, []byte(`"task`)) && !bytes.Contains(raw, []byte(`"tools/call"`)) {
		return nil
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			TaskID string           `json:"taskId"`
			Name   string           `json:"name"`
			Task   *json.RawMessage `json:"task"`
			Meta   map[string]any   `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &m) != nil || len(m.ID) == 0 {
		return nil
	}
	if _, modern := m.Params.Meta[mcp.MetaKeyProtocolVersion]; modern {
		return nil
	}
	session := sessionOf(ctx)
	answer := func(a taskAnswer) error {
		p.answers.Store(session+"\x00"+compactID(m.ID), a)
		return errAnswered
	}
	fail := func(code int, format string, args ...any) error {
		return answer(taskAnswer{code: code, msg: fmt.Sprintf(format, args...)})
	}
	switch mcp.MCPMethod(m.Method) {
	case mcp.MethodToolsCall:
		p.mu.RLock()
		r, ok := p.tools[m.Params.Name]
		p.mu.RUnlock()
		var why string
		switch {
		case !ok && m.Params.Task != nil && slices.Contains(p.opts.Reserved, m.Params.Name):
			why = fmt.Sprintf("%s (built in) does not support task augmentation", m.Params.Name)
			p.refuseTask(ctx, governance.Call{Tool: m.Params.Name}, why)
			return fail(mcp.METHOD_NOT_FOUND, "%s", why)
		case !ok:
			return nil // unknown tools are refused (and audited) as usual
		case m.Params.Task == nil && r.taskSupport == mcp.TaskSupportRequired && r.taskAllowed():
			why = fmt.Sprintf("%s must be called as a task (its execution.taskSupport is required)", m.Params.Name)
		case m.Params.Task == nil || r.taskAllowed():
			return nil
		default:
			why = fmt.Sprintf("%s does not support task augmentation", m.Params.Name)
			if c, _ := r.up.caps(); !c.tasks().toolCalls {
				why = fmt.Sprintf("%s does not support task augmentation: upstream %s does not accept tasks", m.Params.Name, r.up.cfg.Name)
			}
		}
		p.refuseTask(ctx, governance.Call{Tool: r.exposed, Upstream: r.up.cfg.Name, UpstreamTool: r.tool}, why)
		return fail(mcp.METHOD_NOT_FOUND, "%s", why)
	case mcp.MethodTasksList:
		return p.listTasks(ctx, session, answer)
	case mcp.MethodTasksGet, mcp.MethodTasksCancel, mcp.MethodTasksResult:
	default:
		return nil
	}
	rec := p.tasks.owned(session, m.Params.TaskID)
	if rec == nil {
		return fail(mcp.INVALID_PARAMS, "%s: no task %q in this session", m.Method, m.Params.TaskID)
	}
	if mcp.MCPMethod(m.Method) == mcp.MethodTasksResult {
		return answer(p.taskResult(ctx, rec))
	}
	res, err := rec.up.call(ctx, m.Method, map[string]any{"taskId": rec.id})
	if err != nil {
		return answer(upstreamError(err))
	}
	return answer(taskAnswer{result: res})
}

// upstreamError is the answer for a forwarded request that failed: the
// upstream's own JSON-RPC error, or an internal error naming the cause.
func upstreamError(err error) taskAnswer {
	var re *rpcError
	if errors.As(err, &re) {
		return taskAnswer{code: re.Code, msg: err.Error()}
	}
	return taskAnswer{code: mcp.INTERNAL_ERROR, msg: err.Error()}
}

// refuseTask audits a call refused for its task member, or for the lack
// of one (MCP 2025-11-25, "Tasks: Tool-Level Negotiation").
func (p *Proxy) refuseTask(ctx context.Context, call governance.Call, why string) {
	if p.opts.Pipeline == nil {
		return
	}
	call.Client, call.Method = governance.ClientName(ctx), string(mcp.MethodToolsCall)
	call.Access = func(map[string]any) (tools.Access, error) {
		return tools.Access{}, tools.Refuse("task-support", "%s", why)
	}
	p.opts.Pipeline.Run(ctx, call, nil)
}

// listTasks answers tasks/list with the session's own tasks, each as its
// upstream reports it now; a task its upstream no longer knows is left out.
func (p *Proxy) listTasks(ctx context.Context, session string, answer func(taskAnswer) error) error {
	tasks := []json.RawMessage{}
	for _, rec := range p.tasks.ofSession(session) {
		raw, err := rec.up.call(ctx, "tasks/get", map[string]any{"taskId": rec.id})
		if err != nil {
			continue
		}
		tasks = append(tasks, raw)
	}
	out, err := json.Marshal(map[string]any{"tasks": tasks})
	if err != nil {
		return answer(taskAnswer{code: mcp.INTERNAL_ERROR, msg: err.Error()})
	}
	return answer(taskAnswer{result: out})
}

// taskResult fetches a task's result from its upstream through the
// pipeline's post-call governance, and ties it to the task.
func (p *Proxy) taskResult(ctx context.Context, rec *taskRecord) taskAnswer {
	tool := rec.deferred.Tool()
	res, err := p.opts.Pipeline.TaskResult(ctx, rec.deferred, func(ctx context.Context) (*mcp.CallToolResult, error) {
		defer rec.up.begin(ctx, tool)()
		raw, err := rec.up.call(ctx, "tasks/result", map[string]any{"taskId": rec.id})
		if err != nil {
			return nil, err
		}
		res, err := decodeCallToolResult(raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %s sent a malformed tasks/result result: %v", rec.up.cfg.Name, err)
		}
		return res, nil
	})
	if err != nil {
		return taskAnswer{code: mcp.INTERNAL_ERROR, msg: err.Error()}
	}
	if res.Meta == nil {
		res.Meta = &mcp.Meta{}
	}
	if res.Meta.AdditionalFields == nil {
		res.Meta.AdditionalFields = map[string]any{}
	}
	res.Meta.AdditionalFields[relatedTask] = map[string]any{"taskId": rec.id}
	out, err := json.Marshal(res)
	if err != nil {
		return taskAnswer{code: mcp.INTERNAL_ERROR, msg: err.Error()}
	}
	return taskAnswer{result: out}
}

// forwardTaskStatus sends an upstream's notifications/tasks/status to the
// session that owns the task, redacted like a log message.
func (p *Proxy) forwardTaskStatus(u *upstream, fields map[string]any) {
	id, _ := fields["taskId"].(string)
	rec := p.tasks.byUpstream(u, id)
	if rec == nil || p.srv == nil {
		return
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return
	}
	out, _ := p.redactLog(raw)
	out["taskId"] = id
	if err := p.srv.SendNotificationToSpecificClient(rec.session, string(mcp.MethodNotificationTasksStatus), out); err != nil {
		p.warnf("upstream %s: task %s status not sent to its client: %v", u.cfg.Name, id, err)
	}
}

// answerMessage is the message Wire sends instead of mcp-go's for a
// request agentmesh answered itself; nil when there is none.
func (w *Wire) answerMessage(id json.RawMessage) []byte {
	v, ok := w.p.answers.LoadAndDelete(w.session + "\x00" + compactID(id))
	if !ok {
		return nil
	}
	a := v.(taskAnswer)
	var out []byte
	var err error
	if a.result != nil {
		out, err = json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Result  json.RawMessage `json:"result"`
		}{mcp.JSONRPC_VERSION, id, a.result})
	} else {
		out, err = json.Marshal(map[string]any{"jsonrpc": mcp.JSONRPC_VERSION, "id": id, "error": map[string]any{"code": a.code, "message": a.msg}})
	}
	if err != nil {
		return nil
	}
	return out
}

// createdMessage puts the upstream's CreateTaskResult in place of the
// placeholder result of an accepted task; msg unchanged otherwise.
func (w *Wire) createdMessage(msg []byte, result json.RawMessage) []byte {
	var r struct {
		Meta map[string]any `json:"_meta"`
	}
	if json.Unmarshal(result, &r) != nil {
		return msg
	}
	id, _ := r.Meta[taskMarker].(string)
	if id == "" {
		return msg
	}
	created := w.p.tasks.takeCreated(w.session, id)
	if created == nil {
		return msg
	}
	out, err := withMember(msg, "result", created)
	if err != nil {
		return msg
	}
	return out
}

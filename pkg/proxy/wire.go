package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// Wire rewrites the JSON-RPC messages of one client connection (the stdio
// session, or one streamable HTTP session) between mcp-go and the client,
// so that what agentmesh relays reaches the client as the upstream wrote
// it, and what the client answers reaches the upstream as the client wrote
// it. mcp-go decodes every message into Go types, which drops members it
// does not model, adds empty ones (a tool's "annotations": {}), drops
// false ones (a prompt argument's "required": false) and sorts the members
// of free-form objects (an elicitation's requestedSchema.properties, whose
// order is the order of the user's form). Wire undoes that for:
//
//   - tools/list, prompts/list, resources/list and resources/templates/list
//     results: each proxied object is the upstream's own (renamed to its
//     exposed name; a tool held back by its pin is the approved definition);
//     the list itself, its order and cursor stay mcp-go's;
//   - elicitation/create and sampling/createMessage requests relayed from an
//     upstream: the params are the upstream's raw params, and the client's
//     raw result is kept for the upstream (requests.go);
//   - the answer to a task-augmented tools/call is the upstream's
//     CreateTaskResult, and tasks/* are answered by agentmesh (tasks.go).
//
// Everything else passes unchanged. The methods are safe for concurrent use.
type Wire struct {
	p       *Proxy
	session string // the mcp-go session id of the connection
	mu      sync.Mutex
	// lists are the client's pending list requests: id → method.
	lists map[string]string
	// relayed are the relayed requests sent to this client: our id → slot.
	relayed map[string]*relaySlot
}

// NewWire returns the rewriter of one client connection, whose mcp-go
// session id is session ("stdio" for the stdio transport).
func (p *Proxy) NewWire(session string) *Wire {
	return &Wire{p: p, session: session, lists: map[string]string{}, relayed: map[string]*relaySlot{}}
}

var listKeys = map[string]string{
	"completion/complete":      "completion",
	"tools/list":               "tools",
	"prompts/list":             "prompts",
	"resources/list":           "resources",
	"resources/templates/list": "resourceTemplates",
}

type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// FromClient sees a message from the client before mcp-go does; it is
// passed on unchanged.
func (w *Wire) FromClient(msg []byte) {
	w.mu.Lock()
	waiting := len(w.relayed) > 0
	w.mu.Unlock()
	if !waiting && !bytes.Contains(msg, []byte("/list")) && !bytes.Contains(msg, []byte("completion/complete")) {
		return // nothing this message could be (a tool call's arguments are not decoded twice)
	}
	var m envelope
	if json.Unmarshal(msg, &m) != nil || len(m.ID) == 0 {
		return
	}
	id := compactID(m.ID)
	w.mu.Lock()
	defer w.mu.Unlock()
	if m.Method != "" {
		if _, ok := listKeys[m.Method]; ok {
			w.lists[id] = m.Method
		}
		return
	}
	if slot, ok := w.relayed[id]; ok {
		delete(w.relayed, id)
		if len(m.Result) > 0 {
			slot.mu.Lock()
			slot.result = m.Result
			slot.mu.Unlock()
		}
	}
}

// ToClient returns the message mcp-go sends the client, rewritten where
// agentmesh relays something (see Wire).
func (w *Wire) ToClient(msg []byte) []byte {
	w.mu.Lock()
	waiting := len(w.lists) > 0
	w.mu.Unlock()
	ours := bytes.Contains(msg, []byte(answerMarker)) || bytes.Contains(msg, []byte(taskMarker))
	if !waiting && !ours && !bytes.Contains(msg, []byte(`"elicitation/create"`)) && !bytes.Contains(msg, []byte(`"sampling/createMessage"`)) {
		return msg // no answer to a list pending, no relayed request: a tool result passes undecoded
	}
	var m envelope
	if json.Unmarshal(msg, &m) != nil || len(m.ID) == 0 {
		return msg
	}
	id := compactID(m.ID)
	if ours && m.Method == "" {
		// A request agentmesh answered itself, or an accepted task's
		// placeholder (tasks.go).
		if len(m.Error) > 0 {
			if out := w.answerMessage(m.ID); out != nil {
				return out
			}
		} else if len(m.Result) > 0 {
			msg = w.createdMessage(msg, m.Result)
		}
	}
	switch {
	case m.Method == "elicitation/create" || m.Method == "sampling/createMessage":
		return w.relayRequest(msg, id, m)
	case m.Method == "" && len(m.Result) > 0:
		w.mu.Lock()
		method, ok := w.lists[id]
		delete(w.lists, id)
		w.mu.Unlock()
		if !ok {
			return msg
		}
		if method == "completion/complete" {
			return w.completionResult(msg, id, m.Result)
		}
		return w.listResult(msg, method, m.Result)
	case m.Method == "":
		w.mu.Lock()
		delete(w.lists, id)
		w.mu.Unlock()
	}
	return msg
}

// relayRequest swaps a relayed request's params for the upstream's raw
// ones; the client's answer to id is then kept for the upstream.
func (w *Wire) relayRequest(msg []byte, id string, m envelope) []byte {
	var marked struct {
		Meta     map[string]any `json:"_meta"`
		Metadata map[string]any `json:"metadata"`
	}
	if json.Unmarshal(m.Params, &marked) != nil {
		return msg
	}
	key, _ := marked.Meta[relayMarker].(string)
	if m.Method == "sampling/createMessage" {
		key, _ = marked.Metadata[relayMarker].(string)
	}
	v, ok := w.p.relays.slots.Load(key)
	if key == "" || !ok {
		return msg
	}
	slot := v.(*relaySlot)
	out, err := withMember(msg, "params", slot.params)
	if err != nil {
		return msg
	}
	w.mu.Lock()
	w.relayed[id] = slot
	w.mu.Unlock()
	return out
}

// completionResult puts the completion object as the upstream wrote it
// (values as governed) into the result.
func (w *Wire) completionResult(msg []byte, id string, result json.RawMessage) []byte {
	v, ok := w.p.completions.LoadAndDelete(w.session + "\x00" + id)
	if !ok {
		return msg
	}
	return withResultMember(msg, result, "completion", v.(pendingCompletion).raw)
}

// withResultMember returns msg with its result's member key set to value,
// or msg unchanged when either does not parse.
func withResultMember(msg []byte, result json.RawMessage, key string, value json.RawMessage) []byte {
	newResult, err := withMember(result, key, value)
	if err != nil {
		return msg
	}
	out, err := withMember(msg, "result", newResult)
	if err != nil {
		return msg
	}
	return out
}

// listResult puts the upstreams' own objects into a list result.
func (w *Wire) listResult(msg []byte, method string, result json.RawMessage) []byte {
	key := listKeys[method]
	var res map[string]json.RawMessage
	if json.Unmarshal(result, &res) != nil {
		return msg
	}
	var items []json.RawMessage
	if json.Unmarshal(res[key], &items) != nil {
		return msg
	}
	changed := false
	for i, item := range items {
		var id struct {
			Name        string `json:"name"`
			URI         string `json:"uri"`
			URITemplate string `json:"uriTemplate"`
		}
		if json.Unmarshal(item, &id) != nil {
			continue
		}
		if raw := w.p.rawObject(method, id.Name, id.URI, id.URITemplate); raw != nil {
			items[i], changed = raw, true
		}
	}
	if !changed {
		return msg
	}
	list, err := json.Marshal(items)
	if err != nil {
		return msg
	}
	return withResultMember(msg, result, key, list)
}

// rawObject is the raw object a proxied tool, prompt, resource or
// template is listed as; nil for anything agentmesh does not proxy.
func (p *Proxy) rawObject(method, name, uri, template string) json.RawMessage {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch method {
	case "tools/list":
		r, ok := p.tools[name]
		if !ok {
			return nil
		}
		if r.pinned != nil {
			if _, approved := p.approved.Load(approvedKey(r)); !approved {
				return r.pinnedRaw
			}
		}
		return r.raw
	case "prompts/list":
		if pt, ok := p.prompts[name]; ok {
			return pt.raw
		}
	case "resources/list":
		return p.rawResources[uri]
	case "resources/templates/list":
		return p.rawTemplates[template]
	}
	return nil
}

// LineMapper reads newline-delimited messages (MCP 2025-11-25, "Transports:
// stdio") from r and returns each line as f maps it. r should bound line
// length (lineio.Limiter).
type LineMapper struct {
	r       *bufio.Reader
	f       func([]byte) []byte
	pending []byte
}

// NewLineMapper returns a LineMapper.
func NewLineMapper(r io.Reader, f func([]byte) []byte) *LineMapper {
	return &LineMapper{r: bufio.NewReaderSize(r, 64<<10), f: f}
}

func (l *LineMapper) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		line, err := l.r.ReadBytes('\n')
		if len(line) > 0 {
			body := bytes.TrimRight(line, "\r\n")
			if len(body) > 0 {
				out := l.f(body)
				l.pending = append(append(make([]byte, 0, len(out)+1), out...), '\n')
			} else {
				l.pending = line
			}
		}
		if err != nil && len(l.pending) == 0 {
			return 0, err
		}
		if err != nil {
			break
		}
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

// LineWriter writes to w each complete line written to it, as f maps it.
// Each mapped line goes to w in one Write.
type LineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	f       func([]byte) []byte
	partial []byte
}

// NewLineWriter returns a LineWriter.
func NewLineWriter(w io.Writer, f func([]byte) []byte) *LineWriter {
	return &LineWriter{w: w, f: f}
}

func (l *LineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			break
		}
		line := append(l.partial, b[:i]...)
		l.partial = nil
		b = b[i+1:]
		out := l.f(line)
		if _, err := l.w.Write(append(append(make([]byte, 0, len(out)+1), out...), '\n')); err != nil {
			return 0, err
		}
	}
	return n, nil
}

package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
)

// taskUpstream is an mcp-go server that accepts task-augmented tools/call
// (MCP 2025-11-25, "Tasks"): slow may run as a task and waits for release
// before answering with a secret in its text and structured content;
// quick forbids tasks; must requires them. calls counts the calls that
// reached it.
func taskUpstream(t *testing.T) (url string, release chan struct{}, calls *atomic.Int64) {
	release = make(chan struct{})
	calls = &atomic.Int64{}
	s := server.NewMCPServer("tasks", "1.0.0", server.WithToolCapabilities(true), server.WithTaskCapabilities(true, true, true))
	slow := mcp.NewTool("slow", mcp.WithString("city"))
	slow.Execution = &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}
	s.AddTool(slow, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls.Add(1)
		// Not ctx: mcp-go's HTTP server derives a task's context from the
		// POST that created it, which ends with the CreateTaskResult.
		<-release
		secret := "api_key=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
		res := mcp.NewToolResultText("sunny in " + req.GetString("city", "") + "; " + secret)
		res.StructuredContent = map[string]any{"note": secret}
		return res, nil
	})
	s.AddTool(mcp.NewTool("quick"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls.Add(1)
		return mcp.NewToolResultText("quick"), nil
	})
	must := mcp.NewTool("must")
	must.Execution = &mcp.ToolExecution{TaskSupport: mcp.TaskSupportRequired}
	s.AddTool(must, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls.Add(1)
		return mcp.NewToolResultText("must"), nil
	})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return ts.URL + "/mcp", release, calls
}

// session initializes a 2025-11-25 session with agentmesh over HTTP and
// returns its headers and the server's capabilities.
func session(t *testing.T, url string) (map[string]string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"tasks-test","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var init struct {
		Result struct {
			Capabilities map[string]any `json:"capabilities"`
		} `json:"result"`
	}
	json.NewDecoder(resp.Body).Decode(&init)
	h := map[string]string{"Mcp-Session-Id": resp.Header.Get("Mcp-Session-Id"), "Mcp-Protocol-Version": "2025-11-25"}
	post(t, url, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h)
	return h, init.Result.Capabilities
}

// rpc sends one request and returns its response (notifications that
// came before it on the same stream are skipped).
func rpc(t *testing.T, url string, h map[string]string, id int, method, params string) map[string]any {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":` + itoa(id) + `,"method":"` + method + `","params":` + params + `}`
	for _, m := range messages(t, url, body, h) {
		if m["id"] == float64(id) {
			return m
		}
	}
	t.Fatalf("no response to %s", body)
	return nil
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func errorCode(m map[string]any) float64 {
	e, _ := m["error"].(map[string]any)
	if e == nil {
		return 0
	}
	c, _ := e["code"].(float64)
	return c
}

func openTaskRuntime(t *testing.T, policy string, more ...config.Upstream) (*mcpserver.Runtime, chan struct{}, *atomic.Int64) {
	url, release, calls := taskUpstream(t)
	rt := openRuntimeWith(t, config.Upstream{Name: "tk", URL: url}, policy, func(c *config.Config) {
		c.Upstreams = append(c.Upstreams, more...)
	})
	return rt, release, calls
}

// TestTaskAugmentedCallIsGovernedAndRelayed: agentmesh declares tasks
// because an upstream offers them; a task-augmented call goes through the
// pipeline (a blocked one never reaches the upstream), an allowed one
// returns the upstream's CreateTaskResult; tasks/get, tasks/list and
// tasks/result are routed to the upstream for the session that created the
// task only; the deferred result is redacted (text and structuredContent)
// and the audit log shows the acceptance and the outcome, tied to the
// call's write-ahead intent and the task id, with no secret in it.
func TestTaskAugmentedCallIsGovernedAndRelayed(t *testing.T) {
	policy := `policies:
  - name: tk
    rules:
      - name: no-paris
        condition: 'upstream_tool == "slow" && params.city == "Paris"'
        action: block
        message: "Paris is off limits"
`
	rt, release, calls := openTaskRuntime(t, policy)
	url := serveHTTP(t, rt)
	a, caps := session(t, url)
	tasks, _ := caps["tasks"].(map[string]any)
	if tasks == nil || toJSON(tasks["requests"]) != `{"tools":{"call":{}}}` || tasks["list"] == nil || tasks["cancel"] == nil {
		t.Fatalf("capabilities.tasks = %v, want list, cancel and requests.tools.call", caps["tasks"])
	}
	list := rpc(t, url, a, 2, "tools/list", `{}`)
	if !strings.Contains(toJSON(list), `"execution":{"taskSupport":"optional"}`) {
		t.Errorf("tools/list does not show slow's taskSupport: %s", toJSON(list))
	}

	blocked := rpc(t, url, a, 3, "tools/call", `{"name":"tk__slow","arguments":{"city":"Paris"},"task":{"ttl":60000}}`)
	res, _ := blocked["result"].(map[string]any)
	if res == nil || res["isError"] != true || !strings.Contains(toJSON(res), "Paris is off limits") || res["task"] != nil {
		t.Fatalf("a blocked task-augmented call: %s", toJSON(blocked))
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the blocked call reached the upstream (%d calls)", n)
	}

	created := rpc(t, url, a, 4, "tools/call", `{"name":"tk__slow","arguments":{"city":"Oslo"},"task":{"ttl":60000}}`)
	task, _ := created["result"].(map[string]any)["task"].(map[string]any)
	id, _ := task["taskId"].(string)
	if id == "" || task["status"] != "working" || created["result"].(map[string]any)["content"] != nil {
		t.Fatalf("the allowed call's answer is not the upstream's CreateTaskResult: %s", toJSON(created))
	}
	got := rpc(t, url, a, 5, "tasks/get", `{"taskId":"`+id+`"}`)
	if r, _ := got["result"].(map[string]any); r == nil || r["taskId"] != id || r["status"] != "working" {
		t.Fatalf("tasks/get: %s", toJSON(got))
	}
	if l := rpc(t, url, a, 6, "tasks/list", `{}`); !strings.Contains(toJSON(l["result"]), id) {
		t.Fatalf("tasks/list of the owner lacks %s: %s", id, toJSON(l))
	}
	if u := rpc(t, url, a, 7, "tasks/get", `{"taskId":"no-such-task"}`); errorCode(u) != mcp.INVALID_PARAMS {
		t.Fatalf("tasks/get of an unknown id: %s, want error %d", toJSON(u), mcp.INVALID_PARAMS)
	}

	// Another session can neither see nor touch the task.
	b, _ := session(t, url)
	for i, method := range []string{"tasks/get", "tasks/cancel", "tasks/result"} {
		if m := rpc(t, url, b, 10+i, method, `{"taskId":"`+id+`"}`); errorCode(m) != mcp.INVALID_PARAMS {
			t.Fatalf("%s of another session's task: %s, want error %d", method, toJSON(m), mcp.INVALID_PARAMS)
		}
	}
	if l := rpc(t, url, b, 13, "tasks/list", `{}`); toJSON(l["result"]) != `{"tasks":[]}` {
		t.Fatalf("tasks/list of another session: %s", toJSON(l))
	}

	close(release)
	out := rpc(t, url, a, 20, "tasks/result", `{"taskId":"`+id+`"}`)
	r, _ := out["result"].(map[string]any)
	text := toJSON(r)
	if r == nil || r["isError"] == true || !strings.Contains(text, "sunny in Oslo") || strings.Contains(text, "sk-proj-abc") || !strings.Contains(toJSON(r["content"]), "[REDACTED:") || !strings.Contains(toJSON(r["structuredContent"]), "[REDACTED:") {
		t.Fatalf("tasks/result: %s; want the forecast with the key redacted in content and structuredContent", toJSON(out))
	}
	if rel := toJSON(r["_meta"]); !strings.Contains(rel, `"io.modelcontextprotocol/related-task":{"taskId":"`+id+`"}`) {
		t.Errorf("tasks/result _meta = %s, want the related task", rel)
	}

	entries, err := rt.Log.List(context.Background(), auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	var intent *uint64
	var seen []string
	for _, e := range entries {
		raw, _ := json.Marshal(e.Entry)
		if strings.Contains(string(raw), "sk-proj-abc") {
			t.Errorf("a secret reached the audit log: %s", raw)
		}
		if e.Entry.Tool != "tk__slow" {
			continue
		}
		var d struct {
			Task string `json:"task"`
		}
		json.Unmarshal(e.Entry.Details, &d)
		switch {
		case e.Entry.Action == audit.ActionToolIntent:
			seq := e.Entry.Seq
			intent = &seq
			seen = append(seen, "intent")
		case e.Entry.Action == audit.ActionToolInvocation:
			s := string(e.Entry.Result)
			if d.Task != "" {
				s += " task"
				if d.Task != id {
					t.Errorf("entry %d names task %s, want %s", e.Entry.Seq, d.Task, id)
				}
			}
			if e.Entry.Result == audit.ResultRedacted && (e.Entry.Intent == nil || intent == nil || *e.Entry.Intent != *intent) {
				t.Errorf("the outcome entry's intent = %v, want the intent's seq %v", e.Entry.Intent, intent)
			}
			seen = append(seen, s)
		}
	}
	if want := "blocked intent allowed task redacted task"; strings.Join(seen, " ") != want {
		t.Fatalf("audit of tk__slow: %q, want %q", strings.Join(seen, " "), want)
	}
}

// TestTaskStatusReachesTheOwner: the upstream's notifications/tasks/status
// reach the session that created the task, on its GET stream.
func TestTaskStatusReachesTheOwner(t *testing.T) {
	rt, release, _ := openTaskRuntime(t, "")
	url := serveHTTP(t, rt)
	a, _ := session(t, url)
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range a {
		req.Header.Set(k, v)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	status := make(chan map[string]any, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal([]byte(strings.TrimPrefix(sc.Text(), "data: ")), &m) == nil && m["method"] == "notifications/tasks/status" {
				status <- m["params"].(map[string]any)
			}
		}
	}()
	created := rpc(t, url, a, 2, "tools/call", `{"name":"tk__slow","arguments":{"city":"Oslo"},"task":{}}`)
	id, _ := created["result"].(map[string]any)["task"].(map[string]any)["taskId"].(string)
	close(release)
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-status:
			if p["taskId"] == id && p["status"] == "completed" {
				return
			}
		case <-deadline:
			t.Fatalf("no notifications/tasks/status completed for %s", id)
		}
	}
}

// TestTaskAugmentationRefusedWhereUnsupported: a task-augmented call of a
// tool that forbids tasks, of an upstream that accepts none, or of a
// built-in tool, and a call without a task of a tool that requires one,
// are refused with -32601 and audited, and never reach the upstream
// ("Tasks: Tool-Level Negotiation"); without the task member the same
// tools run.
func TestTaskAugmentationRefusedWhereUnsupported(t *testing.T) {
	url, _, calls := taskUpstream(t)
	data := t.TempDir()
	rt := openRuntimeWith(t, config.Upstream{Name: "tk", URL: url}, "", func(c *config.Config) {
		c.Upstreams = append(c.Upstreams, config.Upstream{Name: "wx", URL: upstreamServer(t)})
		c.Tools.WithUpstreams, c.Tools.Filesystem.Enabled = true, true
		c.Tools.Filesystem.Roots = []config.Root{{Path: data, Mount: "/data", Access: "read"}}
	})
	url = serveHTTP(t, rt)
	a, _ := session(t, url)
	for i, name := range []string{"tk__quick", "wx__forecast", "filesystem_list"} {
		m := rpc(t, url, a, 2+i, "tools/call", `{"name":"`+name+`","arguments":{"city":"Oslo","path":"/data"},"task":{}}`)
		if errorCode(m) != mcp.METHOD_NOT_FOUND {
			t.Fatalf("task-augmented %s: %s, want error %d", name, toJSON(m), mcp.METHOD_NOT_FOUND)
		}
	}
	if m := rpc(t, url, a, 6, "tools/call", `{"name":"tk__must","arguments":{}}`); errorCode(m) != mcp.METHOD_NOT_FOUND {
		t.Fatalf("tk__must without a task: %s, want error %d", toJSON(m), mcp.METHOD_NOT_FOUND)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("a refused task-augmented call reached the upstream (%d calls)", n)
	}
	if m := rpc(t, url, a, 5, "tools/call", `{"name":"tk__quick","arguments":{}}`); toJSON(m["result"]) == "null" || m["result"].(map[string]any)["isError"] == true {
		t.Fatalf("tk__quick without a task: %s", toJSON(m))
	}
	got := strings.Join(invocations(t, rt, func(e audit.Entry) string {
		return strings.TrimSpace(e.Tool + " " + string(e.Result) + " " + strings.Join(e.Rules, ","))
	}), "; ")
	if want := "tk__quick blocked builtin:task-support; wx__forecast blocked builtin:task-support; filesystem_list blocked builtin:task-support; tk__must blocked builtin:task-support; tk__quick allowed"; got != want {
		t.Fatalf("audited %q, want %q", got, want)
	}
}

// TestTasksIgnoredWithoutTaskUpstreams: when no upstream accepts tasks,
// agentmesh declares none, runs a call's task member synchronously (MCP
// 2025-11-25, "Task Support and Handling") and answers tasks/* with -32601.
func TestTasksIgnoredWithoutTaskUpstreams(t *testing.T) {
	rt := openRuntime(t, config.Upstream{Name: "wx", URL: upstreamServer(t)}, "")
	url := serveHTTP(t, rt)
	a, caps := session(t, url)
	if caps["tasks"] != nil {
		t.Fatalf("tasks declared without an upstream offering them: %v", caps["tasks"])
	}
	m := rpc(t, url, a, 2, "tools/call", `{"name":"wx__forecast","arguments":{"city":"Oslo"},"task":{}}`)
	if r, _ := m["result"].(map[string]any); r == nil || !strings.Contains(toJSON(r["content"]), "sunny in Oslo") {
		t.Fatalf("a task-augmented call without task support: %s, want the result", toJSON(m))
	}
	if m := rpc(t, url, a, 3, "tasks/get", `{"taskId":"x"}`); errorCode(m) != mcp.METHOD_NOT_FOUND {
		t.Fatalf("tasks/get without task support: %s", toJSON(m))
	}
}

// TestTasksOverStdio: the same relay through agentmesh's stdio transport
// (its Wire sits on the lines): the CreateTaskResult and the governed
// tasks/result reach the client.
func TestTasksOverStdio(t *testing.T) {
	rt, release, _ := openTaskRuntime(t, "")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rt.ServeStdio(ctx, inR, outW); close(done) }()
	t.Cleanup(func() { stop(); inW.Close(); outW.Close(); <-done })
	lines := bufio.NewScanner(outR)
	lines.Buffer(nil, 1<<20)
	send := func(s string) {
		if _, err := io.WriteString(inW, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	await := func(id int) map[string]any {
		for lines.Scan() {
			var m map[string]any
			if json.Unmarshal(lines.Bytes(), &m) == nil && m["id"] == float64(id) {
				return m
			}
		}
		t.Fatalf("no answer to request %d", id)
		return nil
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"stdio","version":"1"}}}`)
	await(1)
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"tk__slow","arguments":{"city":"Oslo"},"task":{}}}`)
	created := await(2)
	id, _ := created["result"].(map[string]any)["task"].(map[string]any)["taskId"].(string)
	if id == "" {
		t.Fatalf("tools/call with a task over stdio: %s", toJSON(created))
	}
	close(release)
	send(`{"jsonrpc":"2.0","id":3,"method":"tasks/result","params":{"taskId":"` + id + `"}}`)
	out := toJSON(await(3)["result"])
	if !strings.Contains(out, "sunny in Oslo") || strings.Contains(out, "sk-proj-abc") {
		t.Fatalf("tasks/result over stdio: %s", out)
	}
	send(`{"jsonrpc":"2.0","id":4,"method":"tasks/get","params":{"taskId":"other"}}`)
	if m := await(4); errorCode(m) != mcp.INVALID_PARAMS {
		t.Fatalf("tasks/get of an unknown task over stdio: %s", toJSON(m))
	}
}

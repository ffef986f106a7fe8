package mcpserver

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// serveMetrics serves rt's metrics listener on loopback for the test and
// returns its base URL.
func serveMetrics(t *testing.T, rt *Runtime) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rt.ServeMetrics(ctx, ln); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return "http://" + ln.Addr().String()
}

// serveMCP serves rt over streamable HTTP on loopback and returns a
// function that sends one JSON-RPC request in an initialized session and
// returns the response body.
func serveMCP(t *testing.T, rt *Runtime) func(body string) string {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- rt.ServeHTTP(ctx, HTTPOptions{Addr: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + Endpoint
	case err := <-done:
		t.Fatalf("ServeHTTP ended before it listened: %v", err)
	}
	t.Cleanup(func() { stop(); <-done })
	session := ""
	post := func(body string) string {
		_, sid, b := postMCP(t, url, session, body)
		if session == "" {
			session = sid
		}
		return b
	}
	post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"obs-test","version":"1"}}}`)
	post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return post
}

// scrape returns every sample of a /metrics page by its series
// (name{labels} as exposed, labels sorted by name).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsCountGovernedCalls: calls made over streamable HTTP are
// counted on the metrics listener exactly as the audit log records them,
// per tool and result; a tool the server does not have is counted as
// "unknown"; a rate-limit refusal is counted under its rule; the audit
// commits are timed.
func TestMetricsCountGovernedCalls(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "files"), 0o700)
	os.WriteFile(filepath.Join(dir, "files", "a.txt"), []byte("hello"), 0o600)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte(`policies:
  - name: reads
    rules:
      - name: slow
        condition: "tool == 'filesystem_read'"
        limit: "2/hour"
        action: block
`), 0o600)
	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(dir, "state")
	cfg.Agent = config.Agent{Name: "obs-test", Sponsor: "me@example.com"}
	cfg.Audit.Witness = false
	cfg.Policies.Paths = []string{policy}
	cfg.Tools.Filesystem.Roots = []config.Root{{Path: filepath.Join(dir, "files"), Mount: "/data", Access: config.AccessRead}}
	cfg.HTTP.MetricsAddr = "127.0.0.1:0"
	rt, err := Open(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	base := serveMetrics(t, rt)
	call := serveMCP(t, rt)

	read := func(id int, path string) string {
		return call(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"filesystem_read","arguments":{"path":%q}}}`, id, path))
	}
	for i, c := range []struct{ path, want string }{
		{"/data/a.txt", "hello"},
		{"/data/../../etc/passwd", `"isError":true`}, // the tool's guard
		{"/data/a.txt", "hello"},
		{"/data/a.txt", `"isError":true`}, // over reads/slow's limit
	} {
		if got := read(i+1, c.path); !strings.Contains(got, c.want) {
			t.Fatalf("read %s: %s, want %s", c.path, got, c.want)
		}
	}
	if got := call(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}`); !strings.Contains(got, `"error"`) {
		t.Fatalf("unknown tool: %s, want a JSON-RPC error", got)
	}

	m := scrape(t, base)
	want := map[string]float64{
		`agentmesh_calls_total{result="allowed",tool="filesystem_read",upstream=""}`:                                                    2,
		`agentmesh_calls_total{result="blocked",tool="filesystem_read",upstream=""}`:                                                    2,
		`agentmesh_calls_total{result="blocked",tool="unknown",upstream=""}`:                                                            1,
		`mcp_server_operation_duration_seconds_count{gen_ai_tool_name="filesystem_read",mcp_method_name="tools/call",result="allowed"}`: 2,
		`agentmesh_decision_duration_seconds_count`:                                                                                     5,
		`agentmesh_rate_limit_hits_total{rule="reads/slow"}`:                                                                            1,
		`agentmesh_audit_queue_depth`:                                                                                                   0,
		`agentmesh_audit_witness_lag_entries`:                                                                                           0,
	}
	for series, v := range want {
		if got, ok := m[series]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
		}
	}
	if m["agentmesh_audit_commit_duration_seconds_count"] < 5 || m["agentmesh_audit_entries_per_commit_sum"] < 5 {
		t.Errorf("audit commits: %v commits, %v entries; want at least the 5 calls'", m["agentmesh_audit_commit_duration_seconds_count"], m["agentmesh_audit_entries_per_commit_sum"])
	}

	// The counters agree with the audit log, result by result.
	logged := map[string]float64{}
	err = rt.DB.Read(context.Background(), func(tx *sql.Tx) error {
		rows, err := tx.Query(`SELECT result, count(*) FROM audit_entries WHERE action = 'tool_invocation' GROUP BY result`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r string
			var n float64
			if err := rows.Scan(&r, &n); err != nil {
				return err
			}
			logged[r] = n
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	counted := map[string]float64{}
	for series, v := range m {
		if strings.HasPrefix(series, "agentmesh_calls_total{") {
			r := strings.SplitN(strings.TrimPrefix(series, `agentmesh_calls_total{result="`), `"`, 2)[0]
			counted[r] += v
		}
	}
	if fmt.Sprint(counted) != fmt.Sprint(logged) {
		t.Errorf("calls counted by result %v, audit log %v", counted, logged)
	}
}

func getReady(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// failedChecks names the failing checks of a /readyz body.
func failedChecks(body map[string]any) []string {
	var names []string
	failed, _ := body["failed"].([]any)
	for _, c := range failed {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	return names
}

// TestHealthAndReadiness: /healthz answers while the process runs;
// /readyz is 200 while the database answers and the log accepts appends,
// 503 naming the audit log once it latched tampered (another connection
// deleted its last entry: a rollback), and 503 naming the database too
// once that is closed.
func TestHealthAndReadiness(t *testing.T) {
	rt := openTestRuntime(t, "ready-test")
	base := serveMetrics(t, rt)
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, b)
	}
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("/metrics with metrics off: %v %v, want 404", resp.StatusCode, err)
	}
	if code, body := getReady(t, base); code != 200 || body["status"] != "ready" || len(failedChecks(body)) != 0 {
		t.Fatalf("/readyz: %d %v", code, body)
	}
	other, err := state.OpenDB(context.Background(), rt.DB.Path, "full")
	if err != nil {
		t.Fatal(err)
	}
	err = other.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`DELETE FROM audit_entries WHERE seq = (SELECT max(seq) FROM audit_entries)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := rt.Log.Append(context.Background(), audit.Entry{Agent: rt.ID.DID(), Action: audit.ActionToolInvocation, Tool: "t", Result: audit.ResultAllowed}, nil); !errors.Is(err, auditlog.ErrTampered) {
		t.Fatalf("append after a rollback: %v, want ErrTampered", err)
	}
	code, body := getReady(t, base)
	if code != 503 || fmt.Sprint(failedChecks(body)) != "[audit_log]" || !strings.Contains(fmt.Sprint(body["failed"]), "rollback") {
		t.Fatalf("/readyz with the log latched tampered: %d %v, want 503 naming audit_log", code, body)
	}
	rt.DB.Close()
	code, body = getReady(t, base)
	if code != 503 || fmt.Sprint(failedChecks(body)) != "[database audit_log]" {
		t.Fatalf("/readyz with the database closed: %d %v, want 503 naming database", code, body)
	}
}

// TestReadinessNamesAnUpstreamNotStarted: an upstream whose command
// cannot start keeps the server not ready, and /readyz says which and why.
func TestReadinessNamesAnUpstreamNotStarted(t *testing.T) {
	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Agent = config.Agent{Name: "ready-up", Sponsor: "me@example.com"}
	cfg.Audit.Witness = false
	cfg.Policies.Paths = nil
	cfg.Upstreams = []config.Upstream{{Name: "ghost", Command: filepath.Join(t.TempDir(), "no-such-mcp-server")}}
	rt, err := Open(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	base := serveMetrics(t, rt)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := getReady(t, base)
		if code == 503 && fmt.Sprint(failedChecks(body)) == "[upstream:ghost]" {
			failed := body["failed"].([]any)[0].(map[string]any)
			if !strings.Contains(failed["error"].(string), "could not be started") {
				t.Errorf("why: %v", failed["error"])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %v, want 503 naming upstream:ghost", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsCountRevocation: attacks (path traversal, each at another
// target so each costs) revoke access once; the revocation is counted
// once, and the refusals while revoked are counted as blocked calls.
func TestMetricsCountRevocation(t *testing.T) {
	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(t.TempDir(), "state")
	cfg.Agent = config.Agent{Name: "revoke-test", Sponsor: "me@example.com"}
	cfg.Audit.Witness = false
	cfg.Policies.Paths = nil
	rt, err := Open(context.Background(), &cfg, Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	base := serveMetrics(t, rt)
	call := serveMCP(t, rt)
	for i := range 10 {
		got := call(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"filesystem_read","arguments":{"path":"/data/../../etc/passwd%d"}}}`, i+1, i))
		if !strings.Contains(got, `"isError":true`) {
			t.Fatalf("traversal %d: %s", i, got)
		}
	}
	m := scrape(t, base)
	if got := m["agentmesh_trust_revocations_total"]; got != 1 {
		t.Errorf("agentmesh_trust_revocations_total = %v, want 1", got)
	}
	if got := m[`agentmesh_calls_total{result="blocked",tool="filesystem_read",upstream=""}`]; got != 10 {
		t.Errorf("blocked filesystem_read = %v, want 10", got)
	}
}

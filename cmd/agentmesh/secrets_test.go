package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Secret values for these tests: shaped so that no detector recognises
// them (each test shows a value of the same shape passing unredacted), so
// what removes them is the exact match on configured secrets.
const (
	apiToken    = "fig3-harbor-W8kp-meadow"
	upstreamKey = "plum7-orchard-Q2xv-lantern"
	lookalike   = "pear5-quarry-R4ty-beacon" // a non-secret of the same shape
	marker      = "[REDACTED:configured-secret]"
)

// secretSession is a real `agentmesh serve` over stdio in the workspace,
// with extra environment variables and its stderr (the console) kept in
// a file.
type secretSession struct {
	session
	stderr string
	stop   func()
}

func (w *workspace) serveWith(extraEnv ...string) *secretSession {
	w.t.Helper()
	exe, err := exec.LookPath("agentmesh")
	if err != nil {
		w.t.Fatal(err)
	}
	errPath := filepath.Join(w.dir, "serve.stderr")
	errFile, err := os.Create(errPath)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := client.NewStdioMCPClientWithOptions(exe, append(w.env(), extraEnv...), []string{"serve", "--config", filepath.Join(w.dir, "agentmesh.yaml")},
		transport.WithCommandStderrWriter(errFile))
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "secrets-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		cancel()
		errFile.Close()
		b, _ := os.ReadFile(errPath)
		w.t.Fatalf("serve did not start: %v\n%s", err, b)
	}
	s := &secretSession{session: session{c: c, ctx: ctx}, stderr: errPath}
	var once sync.Once
	s.stop = func() { once.Do(func() { c.Close(); cancel(); errFile.Close() }) }
	w.t.Cleanup(s.stop)
	return s
}

// result makes one call and returns the whole result as JSON (content
// and structured content) and its text.
func (s *secretSession) result(t *testing.T, tool string, args map[string]any) (raw, text string, isError bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := s.c.CallTool(s.ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	b, _ := json.Marshal(res)
	var tb strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			tb.WriteString(tc.Text)
		}
	}
	return string(b), tb.String(), res.IsError
}

// console stops serve and returns everything it wrote to stderr.
func (s *secretSession) console(t *testing.T) string {
	t.Helper()
	s.stop()
	b, err := os.ReadFile(s.stderr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertNowhere checks that secret appears in none of: the audit log as
// `agentmesh audit` lists it, and the bytes of the state database files.
func (w *workspace) assertNotInAudit(secret string) {
	w.t.Helper()
	out, errOut, code := w.agentmesh("audit", "--output", "jsonl", "--limit", "0")
	if code != 0 {
		w.t.Fatalf("audit: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, secret) {
		w.t.Errorf("the audit log holds the secret:\n%s", out)
	}
	if !strings.Contains(out, `"tool_invocation"`) {
		w.t.Errorf("the audit log lists no calls:\n%s", out)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(w.db() + suffix)
		if err != nil && !os.IsNotExist(err) {
			w.t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			w.t.Errorf("%s holds the secret", filepath.Base(w.db()+suffix))
		}
	}
}

// headerServer is a loopback API that records what arrives and answers
// with it: the token of the Authorization header (without "Bearer ") and
// the X-Trace header, as a careless API echoes a request.
type headerServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]http.Header
}

func newHeaderServer(t *testing.T) *headerServer {
	s := &headerServer{seen: map[string]http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen[r.URL.Path] = r.Header.Clone()
		s.mu.Unlock()
		if to := r.URL.Query().Get("to"); to != "" {
			http.Redirect(w, r, to, http.StatusFound)
			return
		}
		fmt.Fprintf(w, "token %s\ntrace %s\n", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("X-Trace"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *headerServer) got(path string) (http.Header, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.seen[path]
	return h, ok
}

// TestAPICallInjectedHeader is issue 17's acceptance for api_call: the
// configured Authorization header (a ${env:...} reference) reaches the
// loopback API; the model's result, the console and the audit log never
// hold it, also when the API echoes it; a redirect to another origin does
// not carry it; the model cannot set it.
func TestAPICallInjectedHeader(t *testing.T) {
	api, other := newHeaderServer(t), newHeaderServer(t)
	w := newWorkspace(t)
	w.write("agentmesh.yaml", fmt.Sprintf(`agent: {name: srv, sponsor: devops@company.com}
state_dir: state
scopes:
  - {resources: ["api:%[1]s/*", "api:%[2]s/*"], actions: [call], ttl_minutes: 15}
tools:
  filesystem: {enabled: false}
  database: {enabled: false}
  code: {enabled: false}
  api:
    endpoints:
      - url: %[1]s/*
        methods: [GET]
        allow_private: true
        headers: {Authorization: "Bearer ${env:WX_TOKEN}", X-Tenant: acme}
      - url: %[2]s/*
        methods: [GET]
        allow_private: true
`, api.URL, other.URL))
	s := w.serveWith("WX_TOKEN=" + apiToken)

	raw, text, isErr := s.result(t, "api_call", map[string]any{"url": api.URL + "/echo", "headers": map[string]any{"X-Trace": lookalike}})
	if isErr {
		t.Fatalf("api_call failed: %s", text)
	}
	if h, ok := api.got("/echo"); !ok || h.Get("Authorization") != "Bearer "+apiToken {
		t.Fatalf("the API received Authorization %q, want the configured one", h.Get("Authorization"))
	}
	if strings.Contains(raw, apiToken) || !strings.Contains(text, "token "+marker) {
		t.Errorf("the model's result holds the echoed token, or no marker:\n%s", raw)
	}
	if !strings.Contains(text, "trace "+lookalike) {
		t.Errorf("a value of the same shape that is not a configured secret was redacted too (the test proves nothing):\n%s", text)
	}

	// A redirect to another origin does not carry the header.
	if _, text, isErr := s.result(t, "api_call", map[string]any{"url": api.URL + "/hop?to=" + other.URL + "/landing"}); isErr {
		t.Fatalf("redirect: %s", text)
	}
	if h, ok := other.got("/landing"); !ok || h.Get("Authorization") != "" {
		t.Errorf("the other origin received Authorization %q (arrived: %v)", h.Get("Authorization"), ok)
	}
	if h, _ := api.got("/hop"); h.Get("Authorization") != "Bearer "+apiToken {
		t.Errorf("the first hop lacked the header: %v", h)
	}

	// The model cannot set an injected header: Authorization is refused
	// already as a credential in the call's parameters, any other as a
	// header agentmesh adds.
	if _, text, isErr := s.result(t, "api_call", map[string]any{"url": api.URL + "/forged", "headers": map[string]any{"authorization": "Bearer forged"}}); !isErr {
		t.Errorf("a call setting Authorization: %s", text)
	}
	if _, text, isErr := s.result(t, "api_call", map[string]any{"url": api.URL + "/forged", "headers": map[string]any{"x-tenant": "other"}}); !isErr || !strings.Contains(text, "header X-Tenant is added by agentmesh") {
		t.Errorf("a call setting X-Tenant: %v %s", isErr, text)
	}
	if _, ok := api.got("/forged"); ok {
		t.Error("a refused call reached the API")
	}
	if h, _ := api.got("/echo"); h.Get("X-Tenant") != "acme" {
		t.Errorf("X-Tenant = %q", h.Get("X-Tenant"))
	}
	// The token, learnt somehow, cannot be sent out in a URL either: the
	// call is refused as a configured secret (the console and the audit
	// log, checked below, do not repeat the URL).
	if _, text, isErr := s.result(t, "api_call", map[string]any{"url": api.URL + "/leak?k=" + apiToken}); !isErr || !strings.Contains(text, "would send a secret (configured-secret)") {
		t.Errorf("a call sending the token: %v %s", isErr, text)
	}
	if _, ok := api.got("/leak"); ok {
		t.Error("the call sending the token reached the API")
	}

	console := s.console(t)
	if strings.Contains(console, apiToken) {
		t.Errorf("the console holds the token:\n%s", console)
	}
	if !strings.Contains(console, "api_call") || !strings.Contains(console, "configured-secret") {
		t.Errorf("the console shows no redacted api_call:\n%s", console)
	}
	w.assertNotInAudit(apiToken)
}

// TestUpstreamEchoingItsKey is issue 17's acceptance for upstreams: an
// upstream given its key through a ${env:...} reference prints it in a
// tool result and on its stderr; the model, the console and the audit log
// see the marker; sending the key back out is refused as a secret.
func TestUpstreamEchoingItsKey(t *testing.T) {
	w := newWorkspace(t)
	w.write("env-tool", "")
	w.write("agentmesh.yaml", `agent: {name: srv, sponsor: devops@company.com}
state_dir: state
upstreams:
  - name: fx
    command: fixture-upstream
    cwd: .
    env:
      FIXTURE_KEY: "${env:UPSTREAM_KEY}"
      FIXTURE_PLAIN: "`+lookalike+`"
`)
	s := w.serveWith("UPSTREAM_KEY=" + upstreamKey)

	raw, text, isErr := s.result(t, "fx__env", map[string]any{"name": "FIXTURE_KEY"})
	if isErr || strings.Contains(raw, upstreamKey) || text != "FIXTURE_KEY is "+marker {
		t.Errorf("fx__env FIXTURE_KEY: isError %v, result:\n%s", isErr, raw)
	}
	if _, text, _ := s.result(t, "fx__env", map[string]any{"name": "FIXTURE_PLAIN"}); text != "FIXTURE_PLAIN is "+lookalike {
		t.Errorf("a literal env value of the same shape: %q (it must pass: only configured secrets are removed)", text)
	}
	// The model got the key somehow and sends it back out: refused.
	if _, text, isErr := s.result(t, "fx__echo", map[string]any{"message": "my key is " + upstreamKey}); !isErr || !strings.Contains(text, "configured-secret") {
		t.Errorf("sending the key out: isError %v, %s", isErr, text)
	}
	calls, _ := os.ReadFile(filepath.Join(w.dir, "calls.log"))
	if strings.Contains(string(calls), "echo") {
		t.Errorf("the refused echo reached the upstream: %s", calls)
	}

	console := s.console(t)
	if strings.Contains(console, upstreamKey) {
		t.Errorf("the console holds the key:\n%s", console)
	}
	if !strings.Contains(console, "fixture: FIXTURE_KEY is "+marker) {
		t.Errorf("the upstream's stderr line is missing or not redacted:\n%s", console)
	}
	w.assertNotInAudit(upstreamKey)
}

// TestServeRefusesUnresolvedSecret: a reference that cannot be resolved
// stops serve before it creates anything, with the key, the position and
// the reason; the values that did resolve are not printed.
func TestServeRefusesUnresolvedSecret(t *testing.T) {
	w := newWorkspace(t)
	w.write("agentmesh.yaml", `agent: {name: srv, sponsor: devops@company.com}
state_dir: state
upstreams:
  - name: fx
    command: fixture-upstream
    env:
      FIXTURE_KEY: "${env:UPSTREAM_KEY}"
      OTHER: "${env:SET_ONE}"
`)
	exe, err := exec.LookPath("agentmesh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "serve", "--config", filepath.Join(w.dir, "agentmesh.yaml"))
	cmd.Env, cmd.Dir = append(w.env(), "SET_ONE="+upstreamKey), w.dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("serve: %v\n%s", err, out)
	}
	want := filepath.Join(w.dir, "agentmesh.yaml") + ":7:20: upstreams[0].env.FIXTURE_KEY: ${env:UPSTREAM_KEY}: environment variable UPSTREAM_KEY is not set (or empty)"
	if !strings.Contains(string(out), want) || strings.Contains(string(out), upstreamKey) || strings.Contains(string(out), "serving") {
		t.Errorf("serve said:\n%s\nwant %q and not the value", out, want)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "state")); !os.IsNotExist(err) {
		t.Errorf("serve created the state directory before refusing: %v", err)
	}
}

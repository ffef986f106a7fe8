package governance

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// notes is a small real tool: it returns the text stored under a virtual
// path, refusing paths with "..".
type notes map[string]string

func (n notes) Definition() mcp.Tool { return mcp.NewTool("notes_read") }
func (n notes) Access(args map[string]any) (tools.Access, error) {
	p, err := tools.StringArg(args, "path")
	if err != nil {
		return tools.Access{}, err
	}
	if strings.Contains(p, "..") {
		return tools.Access{}, tools.Refuse("path", "path %q escapes its root", p)
	}
	return tools.Access{Kind: scope.Filesystem, Target: p, Action: scope.Read}, nil
}
func (n notes) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	p, _ := tools.StringArg(args, "path")
	return mcp.NewToolResultText(n[p]), nil
}

type fixture struct {
	p     *Pipeline
	log   *auditlog.Log
	db    *state.DB
	trust *trust.Store
	tool  notes
	now   time.Time
	id    *identity.Identity
	rot   *identity.Rotator
}

var t0 = time.Date(2026, 1, 31, 10, 15, 0, 0, time.UTC)

const testPolicy = `
policies:
  - name: "sanitize-sensitive-data"
    rules:
      - condition: "output contains 'password' or output contains 'api_key'"
        action: "redact"
        message: "Sensitive data detected and redacted"
  - name: "no-secrets-dir"
    rules:
      - name: "secrets"
        condition: "tool == 'notes_read' and params.path startsWith '/data/secret'"
        action: "block"
        severity: "high"
        message: "the secrets directory is off limits"
  - name: "burst"
    rules:
      - name: "three-per-minute"
        condition: "params.path == '/data/burst'"
        limit: "3/minute"
        action: "block"
  - name: "humans"
    rules:
      - name: "ask"
        condition: "params.path == '/data/ask.txt'"
        action: "require_approval"
        severity: "high"
`

func newFixture(t *testing.T, mutate func(*Options)) *fixture {
	t.Helper()
	d, err := state.Create(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Create(d, identity.CreateOptions{Name: "srv", Sponsor: "a@b.com", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDB(context.Background(), state.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, now: t0, id: id, tool: notes{
		"/data/a.txt":      "hello",
		"/data/creds.txt":  "db password: hunter2",
		"/data/pw-doc.txt": "how to choose a password",
		"/data/burst":      "b",
		"/data/ask.txt":    "ask first",
		"/data/big":        strings.Repeat("x", 2000),
	}}
	clock := func() time.Time { return f.now }
	f.log, err = auditlog.Open(context.Background(), db, id, auditlog.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close(); db.Close() })
	f.trust = &trust.Store{DB: db, Model: trust.Model{Initial: 800, RevokeBelow: 300, Tiers: map[string]int{"low": 0, "high": 700}, DailyGainAboveInitial: 10, RepeatWindow: time.Hour}, Now: clock}
	pf, err := policy.ParseFile("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.NewSet(pf)
	if err != nil {
		t.Fatal(err)
	}
	red := redact.New(redact.Options{DisableGitleaks: true})
	v := &identity.Verifier{Authority: id.Authority.Public().(ed25519.PublicKey), Audience: id.DID(), MaxTTL: time.Hour, Skew: time.Minute}
	f.rot = &identity.Rotator{Dir: d, Verifier: v, RotateAt: 0.5, Now: clock, Issuer: identity.NewIssuer(id, 15*time.Minute, "",
		[]identity.ScopeTemplate{{Resources: []string{"filesystem:/data/*"}, Actions: []string{"read"}, TTL: 15 * time.Minute}})}
	opts := Options{
		Agent: id.DID(), Credentials: f.rot, Ledger: trust.Ledger{Log: f.log, Store: f.trust}, TrustModel: f.trust.Model, Now: clock,
		Policy:   policy.NewEngine(set, policy.Options{Counter: ratelimit.NewSQLite(db), Secrets: red, Clock: clock}),
		Redactor: red, RedactOutputs: true, RedactParams: true, MaxOutputBytes: 1000,
	}
	if mutate != nil {
		mutate(&opts)
	}
	f.p = New(opts)
	return f
}

func (f *fixture) call(t *testing.T, path string) (*mcp.CallToolResult, audit.Entry) {
	t.Helper()
	return f.callWith(t, context.Background(), map[string]any{"path": path, "token": "sk-proj-" + strings.Repeat("Ab3x", 12)})
}

// callWith runs notes_read with args in ctx and returns the result and
// the call's audit entry.
func (f *fixture) callWith(t *testing.T, ctx context.Context, args map[string]any) (*mcp.CallToolResult, audit.Entry) {
	t.Helper()
	res, err := f.p.Run(ctx, Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
		return f.tool.Call(ctx, args)
	})
	if err != nil {
		t.Fatal(err)
	}
	last, err := f.log.List(context.Background(), auditlog.Filter{Tool: "notes_read", AfterSeq: -1, Limit: 1})
	if err != nil || len(last) != 1 {
		t.Fatalf("no audit entry for the call: %v", err)
	}
	return res, last[0].Entry
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func TestPipelineDecisions(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		path     string
		isError  bool
		contains string
		result   audit.Result
		rule     string
	}{
		{"/data/a.txt", false, "hello", audit.ResultAllowed, ""},
		{"/etc/hosts", true, "does not grant read filesystem:/etc/hosts", audit.ResultBlocked, "builtin:scope"},
		{"/data/../etc/passwd", true, "escapes its root", audit.ResultBlocked, "builtin:path"},
		{"/data/secret/x", true, "the secrets directory is off limits", audit.ResultBlocked, "no-secrets-dir/secrets"},
		{"/data/creds.txt", false, "db password: [REDACTED:", audit.ResultRedacted, "sanitize-sensitive-data/#0"},
		{"/data/pw-doc.txt", true, "[WITHHELD] Sensitive data detected and redacted (output withheld: the detectors found nothing to remove)", audit.ResultWithheld, "sanitize-sensitive-data/#0"},
		{"/data/big", true, "over the 1000-byte limit", audit.ResultBlocked, "builtin:output-size"},
	}
	for _, tt := range tests {
		res, e := f.call(t, tt.path)
		if res.IsError != tt.isError || !strings.Contains(text(res), tt.contains) {
			t.Errorf("%s: isError=%v text=%q; want isError=%v containing %q", tt.path, res.IsError, text(res), tt.isError, tt.contains)
		}
		if e.Result != tt.result || (tt.rule != "" && !contains(e.Rules, tt.rule)) {
			t.Errorf("%s: audit entry result %s rules %v; want %s with %s", tt.path, e.Result, e.Rules, tt.result, tt.rule)
		}
		if strings.Contains(string(e.Params), "Ab3xAb3x") {
			t.Errorf("%s: a secret in params reached the audit log: %s", tt.path, e.Params)
		}
		if e.TrustScore == nil {
			t.Errorf("%s: entry without trust score", tt.path)
		}
	}
	if strings.Contains(text(must(f.call(t, "/data/creds.txt"))), "hunter2") {
		t.Error("hunter2 passed through")
	}
	if _, err := f.log.Verify(context.Background(), auditlog.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func must(r *mcp.CallToolResult, _ audit.Entry) *mcp.CallToolResult { return r }

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestRateLimitThroughPipeline(t *testing.T) {
	f := newFixture(t, nil)
	for i := 0; i < 3; i++ {
		if res, _ := f.call(t, "/data/burst"); res.IsError {
			t.Fatalf("call %d refused: %s", i+1, text(res))
		}
	}
	res, e := f.call(t, "/data/burst")
	if !res.IsError || !contains(e.Rules, "burst/three-per-minute") {
		t.Fatalf("4th call in a minute: %q, rules %v", text(res), e.Rules)
	}
	before := *e.TrustScore
	_, e = f.call(t, "/data/burst")
	if *e.TrustScore != before {
		t.Errorf("a second rate-limit hit in the same window cost trust again: %d -> %d", before, *e.TrustScore)
	}
	f.now = f.now.Add(61 * time.Second)
	if res, _ := f.call(t, "/data/burst"); res.IsError {
		t.Fatalf("after the window: %s", text(res))
	}
}

func TestExpiredCredentialRefuses(t *testing.T) {
	f := newFixture(t, nil)
	if res, _ := f.call(t, "/data/a.txt"); res.IsError {
		t.Fatal(text(res))
	}
	// The rotator cannot renew: its issuer now grants nothing valid, as if
	// the authority key were gone; move past the credential's life.
	f.rot.Issuer = &identity.Issuer{Authority: f.id.Authority, Subject: "did:agentmesh:someone-else", TTL: time.Minute}
	f.now = f.now.Add(20 * time.Minute)
	res, e := f.call(t, "/data/a.txt")
	if !res.IsError || !strings.Contains(text(res), "no valid credential") || !contains(e.Rules, "builtin:credential") {
		t.Fatalf("expired credential: %q rules %v", text(res), e.Rules)
	}
}

func TestRevocationAndReset(t *testing.T) {
	f := newFixture(t, nil)
	// The same refusal repeated costs once per repeat window.
	var e audit.Entry
	for i := 0; i < 5; i++ {
		_, e = f.call(t, "/data/secret/x")
	}
	if *e.TrustScore != 750 {
		t.Fatalf("5 identical high blocks: score %d, want 750 (charged once)", *e.TrustScore)
	}
	for i := 0; i < 20; i++ {
		f.call(t, fmt.Sprintf("/data/secret/x%d", i)) // high: -50 each
	}
	res, e := f.call(t, "/data/a.txt")
	if !res.IsError || !strings.Contains(text(res), "access revoked: trust score") || !contains(e.Rules, "builtin:trust-revoked") {
		t.Fatalf("revoked: %q rules %v", text(res), e.Rules)
	}
	score := *e.TrustScore
	_, e = f.call(t, "/data/secret/x")
	if *e.TrustScore != score {
		t.Fatalf("refusals while revoked lowered the score: %d -> %d", score, *e.TrustScore)
	}
	if _, err := f.log.Append(context.Background(), audit.Entry{Agent: f.id.DID(), Action: audit.ActionTrustReset, Reason: "test"}, f.trust.Hook(trust.Event{Kind: trust.Reset})); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.call(t, "/data/a.txt"); res.IsError {
		t.Fatalf("after reset: %s", text(res))
	}
}

func TestAuditFailureFailsClosed(t *testing.T) {
	f := newFixture(t, nil)
	f.log.Close()
	args := map[string]any{"path": "/data/a.txt"}
	ran := false
	res, err := f.p.Run(context.Background(), Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
		ran = true
		return f.tool.Call(ctx, args)
	})
	if err != nil || !res.IsError || !strings.Contains(text(res), "audit log could not record it") || strings.Contains(text(res), "hello") {
		t.Fatalf("with the log closed: ran=%v res=%q err=%v", ran, text(res), err)
	}
}

func TestShadowModeRecordsWithoutEnforcing(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		pf, _ := policy.ParseFile("test.yaml", []byte(testPolicy))
		set, _ := policy.NewSet(pf)
		o.Policy = policy.NewEngine(set, policy.Options{Shadow: true, Clock: o.Now})
	})
	res, e := f.call(t, "/data/secret/x")
	if res.IsError || e.Enforced == nil || *e.Enforced || !contains(e.Rules, "no-secrets-dir/secrets") {
		t.Fatalf("shadow: isError=%v enforced=%v rules=%v", res.IsError, e.Enforced, e.Rules)
	}
}

func TestUnknownToolIsAudited(t *testing.T) {
	f := newFixture(t, nil)
	res, err := f.p.Run(context.Background(), Call{Tool: "rm_rf", Args: map[string]any{}}, nil)
	if err != nil || !res.IsError {
		t.Fatalf("unknown tool: %v %v", res, err)
	}
	last, _ := f.log.List(context.Background(), auditlog.Filter{Tool: "rm_rf", AfterSeq: -1})
	if len(last) != 1 || last[0].Entry.Result != audit.ResultBlocked || !contains(last[0].Entry.Rules, "builtin:unknown-tool") {
		t.Fatalf("unknown tool entry: %+v", last)
	}
}

// TestUnknownContentBlocksAreScanned: a content block of a type the
// pipeline has no case for (here a pointer to an embedded resource) is
// still scanned, and a secret in it never passes through.
func TestUnknownContentBlocksAreScanned(t *testing.T) {
	f := newFixture(t, nil)
	args := map[string]any{"path": "/data/a.txt"}
	res, err := f.p.Run(context.Background(), Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
		r := mcp.NewToolResultText("see the resource")
		r.Content = append(r.Content, &mcp.EmbeddedResource{Type: "resource", Resource: mcp.TextResourceContents{URI: "file:///x", Text: "db password: hunter2"}})
		return r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Content {
		raw, _ := json.Marshal(c)
		if strings.Contains(string(raw), "hunter2") {
			t.Fatalf("a secret in an unhandled content block passed through: %s", raw)
		}
	}
	last, _ := f.log.List(context.Background(), auditlog.Filter{Tool: "notes_read", AfterSeq: -1, Limit: 1})
	if len(last) != 1 || last[0].Entry.Result != audit.ResultRedacted {
		t.Fatalf("entry: %+v", last)
	}
}

// TestDecodedStructuredContentIsRedacted: a result decoded from an upstream
// keeps its raw structuredContent bytes, which mcp-go encodes in preference
// to the decoded value; a secret there must not pass (found by the e2e
// suite with server-filesystem, which returns files as structuredContent).
func TestDecodedStructuredContentIsRedacted(t *testing.T) {
	f := newFixture(t, nil)
	args := map[string]any{"path": "/data/a.txt"}
	raw := json.RawMessage(`{"content":[{"type":"text","text":"ok"}],"structuredContent":{"content":"region = eu-west-1\ndb password: hunter2\n","size":12345678901234567890}}`)
	res, err := f.p.Run(context.Background(), Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
		return mcp.ParseCallToolResult(&raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") || !strings.Contains(string(out), "[REDACTED:") {
		t.Fatalf("encoded result %s: want the structured content redacted", out)
	}
	// The bytes are redacted in place: numbers keep their digits.
	if !strings.Contains(string(out), `"size":12345678901234567890`) {
		t.Fatalf("encoded result %s: the large number lost precision", out)
	}
}

// TestParamsOfCancelledCallsAreLogged: a call the client cancelled is still
// audited with its (scanned) params.
func TestParamsOfCancelledCallsAreLogged(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	args := map[string]any{"path": "/data/a.txt"}
	f.p.Run(ctx, Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
		cancel()
		return nil, ctx.Err()
	})
	last, _ := f.log.List(context.Background(), auditlog.Filter{Tool: "notes_read", AfterSeq: -1, Limit: 1})
	if len(last) != 1 || string(last[0].Entry.Params) != `{"path":"/data/a.txt"}` {
		t.Fatalf("entry of the cancelled call: %+v", last)
	}
}

// approverFunc is an Approver from a function: the pipeline's side of the
// approval protocol, without a client (the elicitation round trip itself is
// tested end to end in e2e/approval.test.mjs).
type approverFunc func(context.Context, ApprovalRequest) (ApprovalAnswer, error)

func (f approverFunc) Approve(ctx context.Context, r ApprovalRequest) (ApprovalAnswer, error) {
	return f(ctx, r)
}

func TestRequireApproval(t *testing.T) {
	for _, tc := range []struct {
		name       string
		approver   Approver
		result     audit.Result
		reason     string
		trustMoves bool
	}{
		{"no approver", nil, audit.ResultBlocked, "approval required: ", true},
		{"client cannot ask", approverFunc(func(context.Context, ApprovalRequest) (ApprovalAnswer, error) {
			return ApprovalAnswer{}, ErrApprovalUnsupported
		}), audit.ResultBlocked, "approval required: ", true},
		{"asking fails", approverFunc(func(context.Context, ApprovalRequest) (ApprovalAnswer, error) {
			return ApprovalAnswer{}, errors.New("client went away")
		}), audit.ResultBlocked, "asking the user failed: client went away", false},
		{"declined", approverFunc(func(context.Context, ApprovalRequest) (ApprovalAnswer, error) {
			return ApprovalAnswer{Action: "decline"}, nil
		}), audit.ResultBlocked, "the user answered decline", false},
		{"approved", approverFunc(func(_ context.Context, r ApprovalRequest) (ApprovalAnswer, error) {
			if r.Tool != "notes_read" || r.Params != `{"path":"/data/ask.txt"}` || !strings.HasPrefix(r.Reason, "approval required: ") {
				return ApprovalAnswer{}, fmt.Errorf("asked %+v", r)
			}
			return ApprovalAnswer{Approved: true, Action: "accept"}, nil
		}), audit.ResultAllowed, "approved by the user (accept)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *Options) { o.Approver = tc.approver })
			args := map[string]any{"path": "/data/ask.txt"}
			res, err := f.p.Run(context.Background(), Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
				return f.tool.Call(ctx, args)
			})
			if err != nil {
				t.Fatal(err)
			}
			last, _ := f.log.List(context.Background(), auditlog.Filter{Tool: "notes_read", AfterSeq: -1})
			e := last[len(last)-1].Entry
			if e.Result != tc.result || !strings.Contains(e.Reason, tc.reason) || res.IsError != (tc.result != audit.ResultAllowed) {
				t.Fatalf("entry %s %q (isError %v), want %s containing %q", e.Result, e.Reason, res.IsError, tc.result, tc.reason)
			}
			if moved := *e.TrustScore != 800; moved != tc.trustMoves {
				t.Fatalf("trust score %d after %s: moved %v, want %v", *e.TrustScore, tc.name, moved, tc.trustMoves)
			}
		})
	}
}

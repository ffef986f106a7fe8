package governance

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
)

// deferCall runs notes_read on path as a call its tool accepts as task id,
// and returns the call's Deferred and its acceptance entry.
func (f *fixture) deferCall(t *testing.T, path, id string) (*Deferred, audit.Entry) {
	t.Helper()
	var d *Deferred
	args := map[string]any{"path": path}
	res, err := f.p.Run(context.Background(), Call{Tool: "notes_read", Args: args, Access: f.tool.Access}, func(ctx context.Context) (*mcp.CallToolResult, error) {
		d = Defer(ctx, id)
		return mcp.NewToolResultText("accepted"), nil
	})
	if err != nil || res.IsError || d == nil {
		t.Fatalf("deferred call of %s: %v %v %v", path, res, err, d)
	}
	return d, f.last(t)
}

func (f *fixture) last(t *testing.T) audit.Entry {
	t.Helper()
	last, err := f.log.List(context.Background(), auditlog.Filter{Tool: "notes_read", AfterSeq: -1, Limit: 1})
	if err != nil || len(last) != 1 {
		t.Fatalf("no audit entry: %v", err)
	}
	return last[0].Entry
}

func taskOf(e audit.Entry) string {
	var d struct {
		Task string `json:"task"`
	}
	json.Unmarshal(e.Details, &d)
	return d.Task
}

// TestDeferredResultIsGovernedOnce: a call accepted as a task is audited as
// accepted; its result, fetched later, passes the post-call rules (a
// redact rule withholds or redacts it) and is audited with the task id;
// fetching results neither counts against a rate limit again nor scores
// trust again.
func TestDeferredResultIsGovernedOnce(t *testing.T) {
	f := newFixture(t, nil)
	if Defer(context.Background(), "x") != nil {
		t.Fatal("Defer outside a governed call returned a Deferred")
	}
	d, e := f.deferCall(t, "/data/creds.txt", "t-1")
	if e.Result != audit.ResultAllowed || taskOf(e) != "t-1" || !strings.Contains(e.Reason, "accepted as task t-1") {
		t.Fatalf("acceptance entry: %+v", e)
	}
	score := *e.TrustScore
	res, err := f.p.TaskResult(context.Background(), d, func(context.Context) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("db password: hunter2"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e = f.last(t)
	if strings.Contains(text(res), "hunter2") || (e.Result != audit.ResultRedacted && e.Result != audit.ResultWithheld) || taskOf(e) != "t-1" {
		t.Fatalf("deferred result %q, entry %+v", text(res), e)
	}
	raw, _ := json.Marshal(e)
	if strings.Contains(string(raw), "hunter2") {
		t.Fatalf("the secret reached the audit log: %s", raw)
	}
	if *e.TrustScore != score {
		t.Errorf("the deferred result changed trust: %d -> %d", score, *e.TrustScore)
	}

	// burst allows 3 calls a minute: two accepted calls and their two
	// results leave room for a third call.
	for i, id := range []string{"b-1", "b-2"} {
		d, _ := f.deferCall(t, "/data/burst", id)
		if res, _ := f.p.TaskResult(context.Background(), d, func(context.Context) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("b"), nil
		}); res.IsError {
			t.Fatalf("result %d: %s", i, text(res))
		}
	}
	if res, _ := f.call(t, "/data/burst"); res.IsError {
		t.Fatalf("the third call was refused: results were counted as calls: %s", text(res))
	}
}

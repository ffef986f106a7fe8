package compliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/caller"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeLog is a Source over entries in memory: entry i at t0 + i hours, a
// signed checkpoint every `every` entries and at the end.
type fakeLog struct {
	entries []audit.Entry
	every   int64
	runs    []Verification
}

func (f *fakeLog) Origin() string { return "test/log" }
func (f *fakeLog) Size() int64    { return int64(len(f.entries)) }

func fakeRoot(n int64) tlog.Hash { return sha256.Sum256([]byte(fmt.Sprint("root", n))) }

func (f *fakeLog) checkpoint(n int64) ([]byte, audit.Checkpoint) {
	cp := audit.Checkpoint{Origin: "test/log", Size: n, Root: fakeRoot(n), Time: f.entries[n-1].Timestamp}
	return []byte(fmt.Sprintf("note of %d", n)), cp
}

func (f *fakeLog) Latest() ([]byte, audit.Checkpoint, error) {
	if len(f.entries) == 0 {
		return nil, audit.Checkpoint{}, fmt.Errorf("empty")
	}
	n, cp := f.checkpoint(f.Size())
	return n, cp, nil
}

func (f *fakeLog) Entries(since, until time.Time) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		for _, e := range f.entries {
			if !e.Timestamp.Before(since) && !e.Timestamp.After(until) && !yield(e, nil) {
				return
			}
		}
	}
}

func (f *fakeLog) LastBefore(t time.Time, actions ...audit.Action) (*audit.Entry, error) {
	for i := len(f.entries) - 1; i >= 0; i-- {
		e := f.entries[i]
		if e.Timestamp.Before(t) && contains(actions, e.Action) {
			return &e, nil
		}
	}
	return nil, nil
}

func (f *fakeLog) Entry(seq int64) (audit.Entry, error) { return f.entries[seq], nil }

func (f *fakeLog) Covering(seq int64) ([]byte, audit.Checkpoint, error) {
	n := min((seq/f.every+1)*f.every, f.Size())
	if seq >= f.Size() {
		return nil, audit.Checkpoint{}, fmt.Errorf("not covered")
	}
	note, cp := f.checkpoint(n)
	return note, cp, nil
}

func (f *fakeLog) CheckpointAt(size int64) ([]byte, audit.Checkpoint, bool, error) {
	if size <= 0 || size > f.Size() || size%f.every != 0 && size != f.Size() {
		return nil, audit.Checkpoint{}, false, nil
	}
	note, cp := f.checkpoint(size)
	return note, cp, true, nil
}

func (f *fakeLog) Verifications(since, until time.Time) ([]Verification, error) {
	var out []Verification
	for _, v := range f.runs {
		if !v.At.Before(since) && !v.At.After(until) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *fakeLog) add(e audit.Entry) {
	e.Seq = uint64(len(f.entries))
	e.Timestamp = t0.Add(time.Duration(e.Seq) * time.Hour)
	e.Agent = "did:agentmesh:srv"
	f.entries = append(f.entries, e)
}

func score(n int) *int { return &n }

var local = &audit.Caller{ID: "local:alice", Kind: string(caller.Local)}

// session is a scripted history: lifecycle before the period (seqs 0-2),
// then calls, refusals, revocation, reset, rate limits, key changes and
// PHI redaction in it.
func session() *fakeLog {
	f := &fakeLog{every: 3}
	f.add(audit.Entry{Action: audit.ActionIdentityCreated})
	f.add(audit.Entry{Action: audit.ActionCredentialIssued, Details: json.RawMessage(`{"scopes":["filesystem:/data/*"]}`)})
	f.add(audit.Entry{Action: audit.ActionPolicyLoaded, Details: json.RawMessage(`{"reload":false}`)})
	// the period starts here (seq 3)
	call := func(result audit.Result, rules []string, details, reason, params string) {
		e := audit.Entry{Action: audit.ActionToolInvocation, Tool: "filesystem_read", Result: result, Rules: rules, Caller: local, TrustScore: score(800), Reason: reason}
		if details != "" {
			e.Details = json.RawMessage(details)
		}
		if params != "" {
			e.Params = json.RawMessage(params)
		}
		f.add(e)
	}
	call(audit.ResultAllowed, nil, "", "", `{"path":"/data/a.txt"}`)                          // 3
	call(audit.ResultBlocked, []string{"builtin:scope"}, "", "", "")                          // 4
	call(audit.ResultRedacted, nil, "", "sensitive data redacted: medical-record-number", "") // 5
	call(audit.ResultBlocked, []string{"house/limit"}, `{"trust_event":{"kind":"rate_limited"}}`, "", "")
	f.add(audit.Entry{Action: audit.ActionTrustChanged, Caller: local, Details: json.RawMessage(`{"revoked":true,"from":320,"to":220}`)}) // 7
	call(audit.ResultBlocked, []string{"builtin:trust-revoked"}, "", "", "")                                                              // 8
	f.add(audit.Entry{Action: audit.ActionTrustReset, Reason: "reviewed"})                                                                // 9
	f.add(audit.Entry{Action: audit.ActionKeyRotated})                                                                                    // 10
	f.add(audit.Entry{Action: audit.ActionAPIKeyCreated})                                                                                 // 11
	f.add(audit.Entry{Action: audit.ActionAPIKeyRevoked, Reason: "left"})                                                                 // 12
	f.add(audit.Entry{Action: audit.ActionCredentialIssued})                                                                              // 13
	call(audit.ResultAllowed, nil, "", "", `{"query":"SELECT 1 WHERE ssn = '[REDACTED:us-ssn]'"}`)                                        // 14
	f.runs = []Verification{{At: t0.Add(14*time.Hour + 30*time.Minute), Mode: "full", Size: 15, Root: fakeRoot(15).String(), OK: true, Signed: true, Note: []byte("signed record")}}
	return f
}

func evaluate(t *testing.T, f *fakeLog, framework string) *Report {
	t.Helper()
	rep, err := Evaluate(context.Background(), f, Options{Framework: framework, Since: t0.Add(2*time.Hour + 30*time.Minute), Until: t0.Add(20 * time.Hour), VerifierKeys: []string{"vkey"}})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func control(t *testing.T, rep *Report, id string) ControlResult {
	t.Helper()
	for _, c := range rep.Controls {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no control %s in the report", id)
	return ControlResult{}
}

func evidence(t *testing.T, c ControlResult, id string) EvidenceResult {
	t.Helper()
	for _, e := range c.Evidence {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("no evidence %s in %s", id, c.ID)
	return EvidenceResult{}
}

func TestEvaluateSOC2(t *testing.T) {
	f := session()
	rep := evaluate(t, f, SOC2)
	want := map[string]string{
		"CC6.1-scopes": StatusPass, "CC6.1-authentication": StatusPass, "CC6.2-revocation": StatusPass,
		"CC8.1-policy": StatusPass, "CC8.1-tools": StatusNotApplicable, "CC8.1-keys": StatusPass,
		"CC7.2-verification": StatusPass, "CC7.2-anomalies": StatusPass,
	}
	if len(rep.Controls) != len(want) {
		t.Errorf("%d controls, want %d", len(rep.Controls), len(want))
	}
	for id, status := range want {
		if c := control(t, rep, id); c.Status != status {
			t.Errorf("%s: %s (%s), want %s", id, c.Status, c.Reason, status)
		}
	}
	if !rep.OK || rep.Summary[StatusPass] != 7 || rep.Summary[StatusNotApplicable] != 1 {
		t.Errorf("ok %v, summary %v", rep.OK, rep.Summary)
	}
	if rep.Period.Entries != 12 || *rep.Period.FirstSeq != 3 || *rep.Period.LastSeq != 14 {
		t.Errorf("period %+v", rep.Period)
	}

	creds := evidence(t, control(t, rep, "CC6.1-scopes"), "credentials")
	if creds.Count != 1 || *creds.FirstSeq != 13 || creds.Baseline == nil || creds.Baseline.Seq != 1 || creds.Baseline.Checkpoint != 3 {
		t.Errorf("credentials %+v (baseline %+v)", creds, creds.Baseline)
	}
	policy := evidence(t, control(t, rep, "CC8.1-policy"), "policy-loads")
	if policy.Count != 0 || policy.Baseline == nil || policy.Baseline.Seq != 2 {
		t.Errorf("policy in force before the period: %+v", policy)
	}
	attributed := evidence(t, control(t, rep, "CC6.1-authentication"), "attributed-calls")
	if attributed.Count != 6 || attributed.By["local"] != 6 || len(attributed.Cited) != 5 {
		t.Errorf("attributed calls %+v", attributed)
	}
	// Every cited entry names the first checkpoint covering it, and the
	// report carries that checkpoint.
	sizes := map[int64]bool{}
	for _, cp := range rep.Checkpoints {
		sizes[cp.Size] = true
	}
	for _, c := range rep.Citations() {
		if want := min((int64(c.Seq)/3+1)*3, 15); c.Checkpoint != want || !sizes[c.Checkpoint] {
			t.Errorf("seq %d cites checkpoint %d, want %d (in the list: %v)", c.Seq, c.Checkpoint, want, sizes[c.Checkpoint])
		}
	}
	for i := 1; i < len(rep.Checkpoints); i++ {
		if rep.Checkpoints[i-1].Size >= rep.Checkpoints[i].Size {
			t.Errorf("checkpoints not sorted by size: %d, %d", rep.Checkpoints[i-1].Size, rep.Checkpoints[i].Size)
		}
	}
	hits := evidence(t, control(t, rep, "CC7.2-anomalies"), "rate-limit-hits")
	if hits.Count != 1 || *hits.FirstSeq != 6 || hits.By["house/limit"] != 1 {
		t.Errorf("rate-limit hits %+v", hits)
	}

	// Upstream calls make tool approvals applicable: with none recorded
	// the control has no evidence and the report is not OK.
	f.add(audit.Entry{Action: audit.ActionToolInvocation, Tool: "files__read", Upstream: "files", Result: audit.ResultAllowed, Caller: local, TrustScore: score(801)})
	rep = evaluate(t, f, SOC2)
	if c := control(t, rep, "CC8.1-tools"); c.Status != StatusNoEvidence || rep.OK {
		t.Errorf("tools with an upstream and no pins: %s (%s), ok %v", c.Status, c.Reason, rep.OK)
	}
	f.add(audit.Entry{Action: audit.ActionToolApproved, Tool: "files__read", Upstream: "files"})
	if c := control(t, evaluate(t, f, SOC2), "CC8.1-tools"); c.Status != StatusPass {
		t.Errorf("tools after an approval: %s (%s)", c.Status, c.Reason)
	}
}

func TestEvaluateHIPAA(t *testing.T) {
	f := session()
	rep := evaluate(t, f, HIPAA)
	for _, c := range rep.Controls {
		if c.Status != StatusPass {
			t.Errorf("%s: %s (%s)", c.ID, c.Status, c.Reason)
		}
	}
	phi := control(t, rep, "164.514(b)")
	if e := evidence(t, phi, "phi-outputs"); e.Count != 1 || *e.FirstSeq != 5 {
		t.Errorf("phi outputs %+v", e)
	}
	if e := evidence(t, phi, "phi-params"); e.Count != 1 || *e.FirstSeq != 14 {
		t.Errorf("phi params %+v", e)
	}
	first := evidence(t, control(t, rep, "164.316(b)(2)"), "first-entry")
	if first.Baseline == nil || first.Baseline.Seq != 0 || first.Baseline.Action != "identity_created" || first.Baseline.Checkpoint != 3 {
		t.Errorf("first entry %+v", first.Baseline)
	}
	// No PHI redacted in a period: that control has no evidence.
	g := session()
	g.entries[5].Reason, g.entries[14].Params = "sensitive data redacted: email", json.RawMessage(`{}`)
	if c := control(t, evaluate(t, g, HIPAA), "164.514(b)"); c.Status != StatusNoEvidence {
		t.Errorf("no PHI in the period: %s", c.Status)
	}
}

// TestVerificationJudgement: what a period's verification runs make of
// the verification controls.
func TestVerificationJudgement(t *testing.T) {
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	good := func(h float64) Verification {
		return Verification{At: at(h), Mode: "full", Size: 15, Root: fakeRoot(15).String(), OK: true, Signed: true}
	}
	failed := func(h float64, mode string) Verification {
		return Verification{At: at(h), Mode: mode, Size: 15, OK: false, Detail: "seq 7: content changed: ..."}
	}
	tests := []struct {
		name   string
		runs   []Verification
		status string
	}{
		{"none", nil, StatusNoEvidence},
		{"before the period only", []Verification{good(1)}, StatusNoEvidence},
		{"a full pass", []Verification{good(15)}, StatusPass},
		{"incremental only", []Verification{func() Verification { v := good(15); v.Mode = "incremental"; return v }()}, StatusNoEvidence},
		{"unsigned", []Verification{func() Verification { v := good(15); v.Signed = false; return v }()}, StatusNoEvidence},
		{"size with no checkpoint", []Verification{func() Verification { v := good(15); v.Size = 14; v.Root = fakeRoot(14).String(); return v }()}, StatusNoEvidence},
		{"root not the signed one", []Verification{func() Verification { v := good(15); v.Root = fakeRoot(99).String(); return v }()}, StatusFail},
		{"failed, then a full pass", []Verification{failed(15, "full"), good(16)}, StatusPass},
		{"passed, then failed", []Verification{good(15), failed(16, "full")}, StatusFail},
		{"failed incremental, then incremental pass", []Verification{good(14.5), failed(15, "incremental"), func() Verification { v := good(16); v.Mode = "incremental"; return v }()}, StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := session()
			f.runs = tt.runs
			rep := evaluate(t, f, SOC2)
			c := control(t, rep, "CC7.2-verification")
			if c.Status != tt.status {
				t.Errorf("%s (%s), want %s", c.Status, c.Reason, tt.status)
			}
			if hc := control(t, evaluate(t, f, HIPAA), "164.312(c)(1)"); hc.Status != c.Status {
				t.Errorf("HIPAA integrity %s, SOC 2 verification %s", hc.Status, c.Status)
			}
			if rep.OK != (tt.status == StatusPass) {
				t.Errorf("report ok %v with verification %s", rep.OK, c.Status)
			}
		})
	}
}

func TestCatalogue(t *testing.T) {
	for _, fw := range []string{SOC2, HIPAA} {
		ids := map[string]bool{}
		cs := Controls(fw)
		if len(cs) < 5 {
			t.Errorf("%s has %d controls", fw, len(cs))
		}
		for _, c := range cs {
			if ids[c.ID] {
				t.Errorf("%s: control %s twice", fw, c.ID)
			}
			ids[c.ID] = true
			if len(c.Evidence) == 0 && !c.Verification || c.Title == "" || c.Ref == "" || c.Objective == "" {
				t.Errorf("%s: control %s is incomplete", fw, c.ID)
			}
			for _, e := range c.Evidence {
				if e.Match.String() == "" || e.Match.Where != "" && conditionText[e.Match.Where] == "" {
					t.Errorf("%s/%s: evidence %s is not described", fw, c.ID, e.ID)
				}
				if e.Baseline && len(e.Match.Actions) == 0 {
					t.Errorf("%s/%s: baseline evidence %s names no action to look back for", fw, c.ID, e.ID)
				}
			}
		}
	}
	if _, err := Evaluate(context.Background(), session(), Options{Framework: "pci"}); err == nil {
		t.Error("an unknown framework was evaluated")
	}
}

func TestRender(t *testing.T) {
	rep := evaluate(t, session(), SOC2)
	var md, html, js bytes.Buffer
	for format, w := range map[string]*bytes.Buffer{FormatMarkdown: &md, FormatHTML: &html, FormatJSON: &js} {
		if err := rep.Write(w, format); err != nil {
			t.Fatal(err)
		}
	}
	if err := rep.Write(&bytes.Buffer{}, "pdf"); err == nil {
		t.Error("pdf accepted")
	}
	for _, c := range rep.Controls {
		row := fmt.Sprintf("| %s | %s | %s |", c.ID, c.Title, StatusText(c.Status))
		if !strings.Contains(md.String(), row) {
			t.Errorf("markdown lacks the row %q", row)
		}
		if !strings.Contains(html.String(), fmt.Sprintf(`<tr data-control="%s" data-status="%s">`, c.ID, c.Status)) {
			t.Errorf("html lacks the row of %s", c.ID)
		}
	}
	if !strings.Contains(html.String(), "<li><code>agentmesh audit verify</code> on the log") || strings.ContainsRune(html.String(), '\uFFFD') {
		t.Error("html: the checking steps are not marked up")
	}
	if !strings.Contains(html.String(), `<table id="controls"`) || strings.Contains(html.String(), "<script") || strings.Contains(html.String(), "http://") || strings.Contains(html.String(), "https://") {
		t.Error("html is not a self-contained page with the controls table")
	}
	// The JSON decodes back to the same report, and encoding is stable.
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	if err := back.Write(&again, FormatJSON); err != nil || !bytes.Equal(again.Bytes(), js.Bytes()) {
		t.Errorf("JSON does not round-trip (%v)", err)
	}
	var top map[string]json.RawMessage
	json.Unmarshal(js.Bytes(), &top)
	for _, k := range []string{"version", "framework", "generated", "period", "log", "ok", "summary", "controls", "checkpoints"} {
		if _, ok := top[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
}

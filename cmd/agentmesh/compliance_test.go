package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/compliance"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

const complianceConfig = `agent: {name: srv, sponsor: devops@company.com}
state_dir: state
compliance: [soc2, hipaa]
policies: {paths: [policy.yaml]}
tools:
  filesystem:
    roots:
      - {path: data, mount: /data, access: read}
`

const compliancePolicy = `policies:
  - name: house
    rules:
      - name: notes-twice-an-hour
        condition: "tool == 'filesystem_read' and params.path == '/data/notes.txt'"
        limit: "2/hour"
        action: block
      - name: no-vault
        condition: "params.path startsWith '/data/vault'"
        action: block
        severity: critical
`

// complianceSession scripts a day of a governed server through a real
// `serve` and the CLI: reads (PHI in a file and in code params),
// refusals, rate-limit hits, a trust revocation and the operator's reset,
// API keys created and revoked, a key rotation.
func complianceSession(t *testing.T) *workspace {
	t.Helper()
	w := newWorkspace(t)
	w.write("agentmesh.yaml", complianceConfig)
	w.write("policy.yaml", compliancePolicy)
	w.write("data/patients.txt", "Patient: Jane Roe\nMRN: 00482913\nDOB: 03/14/1962\nDx: E11.9\n")
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	expect := func(tool string, args map[string]any, refused bool) string {
		t.Helper()
		text, isErr := s.call(t, tool, args)
		if isErr != refused {
			t.Fatalf("%s %v: refused %v, want %v: %s", tool, args, isErr, refused, text)
		}
		return text
	}
	expect("filesystem_read", map[string]any{"path": "/data/patients.txt"}, false)
	expect("code_execute", map[string]any{"code": `print("SSN: 123-45-6789")`, "language": "starlark"}, false)
	for i := 0; i < 3; i++ { // the third is over the limit
		expect("filesystem_read", map[string]any{"path": "/data/notes.txt"}, i == 2)
	}
	for i := 0; i < 6; i++ { // critical refusals: 800 - 6*100 < 300, revoked
		expect("filesystem_read", map[string]any{"path": fmt.Sprintf("/data/vault/%d.txt", i)}, true)
	}
	if text := expect("filesystem_list", map[string]any{"path": "/data"}, true); !strings.Contains(text, "revoked") {
		t.Fatalf("a call while revoked: %s", text)
	}
	if _, errOut, code := w.agentmesh("trust", "reset", "--reason", "reviewed the vault probes"); code != 0 {
		t.Fatal(errOut)
	}
	expect("filesystem_list", map[string]any{"path": "/data"}, false)
	stop()
	for _, args := range [][]string{
		{"keys", "create", "--caller", "ci-bot"},
		{"keys", "revoke", "ci-bot", "--reason", "rotated out"},
		{"identity", "rotate"},
	} {
		if _, errOut, code := w.agentmesh(args...); code != 0 {
			t.Fatalf("agentmesh %s: %s", strings.Join(args, " "), errOut)
		}
	}
	return w
}

// exported reads every entry with `audit export`, byte for byte.
func (w *workspace) exported() [][]byte {
	w.t.Helper()
	out, errOut, code := w.agentmesh("audit", "export", "--format", "jsonl")
	if code != 0 {
		w.t.Fatal(errOut)
	}
	var raws [][]byte
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raws = append(raws, []byte(sc.Text()))
	}
	return raws
}

func (w *workspace) report(framework string, args ...string) (*compliance.Report, string, int) {
	w.t.Helper()
	out, errOut, code := w.agentmesh(append([]string{"compliance", "report", "--framework", framework, "--output", "json"}, args...)...)
	var rep compliance.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		w.t.Fatalf("compliance report --output json (exit %d): %v\n%s%s", code, err, out, errOut)
	}
	return &rep, errOut, code
}

// TestComplianceReport makes reports of a scripted session's log and
// checks every claim they make against the log, as an auditor would: each
// cited entry's proof against its checkpoint with `audit verify --proof`,
// each checkpoint's root recomputed from the exported entries and its
// signature, the counts recounted from the entries, each accepted
// verification's root and signed record. Then: a period without a full
// verification exits 1; the HTML report renders in headless Chromium.
func TestComplianceReport(t *testing.T) {
	w := complianceSession(t)
	if _, errOut, code := w.agentmesh("audit", "verify"); code != 0 {
		t.Fatal(errOut)
	}
	raws := w.exported()
	entries := make([]audit.Entry, len(raws))
	leaves := make([]tlog.Hash, len(raws))
	for i, raw := range raws {
		e, err := audit.Unmarshal(raw)
		if err != nil || e.Seq != uint64(i) {
			t.Fatalf("exported entry %d: %v", i, err)
		}
		entries[i], leaves[i] = e, audit.LeafHash(raw)
	}
	rootOf := func(n int64) string {
		var tree audit.Frontier
		for _, h := range leaves[:n] {
			tree.Append(h, nil)
		}
		return tree.Root().String()
	}
	d, err := state.Open(filepath.Join(w.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := identity.LoadDocument(d)
	if err != nil {
		t.Fatal(err)
	}
	verifiers, err := auditlog.Verifiers(doc)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(w.dir, "identity-copy.json")
	b, _ := os.ReadFile(filepath.Join(w.dir, "state", "identity.json"))
	w.write("identity-copy.json", string(b))

	for _, framework := range []string{compliance.SOC2, compliance.HIPAA} {
		t.Run(framework, func(t *testing.T) {
			proofs := filepath.Join(w.dir, "proofs-"+framework)
			rep, errOut, code := w.report(framework, "--since", "1h", "--proofs", proofs)
			if code != 0 || !rep.OK {
				t.Fatalf("exit %d, ok %v: %s", code, rep.OK, errOut)
			}
			checkReport(t, w, rep, entries, rootOf, verifiers, keyFile)
		})
	}

	t.Run("no full verification in the period", func(t *testing.T) {
		// The verification above is older than a period starting now.
		rep, errOut, code := w.report(compliance.SOC2, "--since", time.Now().UTC().Format(time.RFC3339))
		if code != 1 || rep.OK {
			t.Fatalf("exit %d, ok %v, want 1", code, rep.OK)
		}
		for _, id := range []string{"CC7.2-verification"} {
			if c := reportControl(t, rep, id); c.Status != compliance.StatusNoEvidence || !strings.Contains(c.Reason, "no full verification") {
				t.Errorf("%s: %s (%s)", id, c.Status, c.Reason)
			}
		}
		if !strings.Contains(errOut, "CC7.2-verification (no-evidence)") {
			t.Errorf("stderr does not name the control: %s", errOut)
		}
		// A second log with no verification at all fails its integrity
		// control, in Markdown too.
		other := newWorkspace(t)
		s, stop, err := other.serve()
		if err != nil {
			t.Fatal(err)
		}
		s.call(t, "filesystem_read", map[string]any{"path": "/data/notes.txt"})
		stop()
		out, errOut, code := other.agentmesh("compliance", "report", "--framework", "hipaa")
		if code != 1 || !strings.Contains(out, "| 164.312(c)(1) | Integrity | ✗ no evidence |") || !strings.Contains(errOut, "164.312(c)(1) (no-evidence)") {
			t.Errorf("a log never verified: exit %d\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("html in headless chromium", func(t *testing.T) {
		out, errOut, code := w.agentmesh("compliance", "report", "--framework", "soc2", "--since", "1h", "--output", "html")
		if code != 0 {
			t.Fatal(errOut)
		}
		checkHTMLInChromium(t, out, compliance.Controls(compliance.SOC2))
	})
}

func reportControl(t *testing.T, rep *compliance.Report, id string) compliance.ControlResult {
	t.Helper()
	for _, c := range rep.Controls {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no control %s", id)
	return compliance.ControlResult{}
}

// checkReport re-checks every claim of a report against the log.
func checkReport(t *testing.T, w *workspace, rep *compliance.Report, entries []audit.Entry, rootOf func(int64) string, verifiers note.Verifiers, keyFile string) {
	t.Helper()
	if rep.Log.Size != int64(len(entries)) || rep.Log.Checkpoint == nil || rep.Log.Checkpoint.Root != rootOf(rep.Log.Size) {
		t.Errorf("log header %+v, want %d entries with the root of all of them", rep.Log, len(entries))
	}
	// Checkpoints: signed by the identity, with the root of that many
	// exported entries.
	byteSize := map[int64]compliance.Checkpoint{}
	for _, cp := range rep.Checkpoints {
		opened, _, err := audit.OpenCheckpoint([]byte(cp.Note), verifiers)
		if err != nil {
			t.Errorf("checkpoint %d: %v", cp.Size, err)
			continue
		}
		if opened.Size != cp.Size || opened.Root.String() != cp.Root || cp.Root != rootOf(cp.Size) {
			t.Errorf("checkpoint %d: note says size %d root %s, report %s, entries %s", cp.Size, opened.Size, opened.Root, cp.Root, rootOf(cp.Size))
		}
		byteSize[cp.Size] = cp
	}
	db := w.sqlite()
	defer db.Close()
	cited := rep.Citations()
	if len(cited) < 10 {
		t.Errorf("only %d citations", len(cited))
	}
	for _, c := range cited {
		e := entries[c.Seq]
		if string(e.Action) != c.Action || !e.Timestamp.Equal(c.Timestamp) || e.Tool != c.Tool || string(e.Result) != c.Result {
			t.Errorf("seq %d cited as %s %s %s at %s; the log says %s %s %s at %s", c.Seq, c.Action, c.Tool, c.Result, c.Timestamp, e.Action, e.Tool, e.Result, e.Timestamp)
		}
		if _, ok := byteSize[c.Checkpoint]; !ok || c.Checkpoint <= int64(c.Seq) {
			t.Errorf("seq %d cites checkpoint %d (listed %v)", c.Seq, c.Checkpoint, ok)
		}
		var first int64
		if err := db.QueryRow(`SELECT min(size) FROM audit_checkpoints WHERE size > ?`, c.Seq).Scan(&first); err != nil || first != c.Checkpoint {
			t.Errorf("seq %d: the first checkpoint covering it has size %d, the report cites %d (%v)", c.Seq, first, c.Checkpoint, err)
		}
		if c.Proof == "" {
			t.Errorf("seq %d: no proof written", c.Seq)
			continue
		}
		out, errOut, code := w.agentmesh("audit", "verify", "--proof", c.Proof, "--key", keyFile)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("entry %d is included", c.Seq)) || !strings.Contains(out, fmt.Sprintf("size %d", c.Checkpoint)) {
			t.Errorf("audit verify --proof %s: exit %d\n%s%s", c.Proof, code, out, errOut)
		}
	}
	// Counts and first/last seqs, recounted from the exported entries.
	inPeriod := func(e audit.Entry) bool {
		return !e.Timestamp.Before(rep.Period.Since) && !e.Timestamp.After(rep.Period.Until)
	}
	recount := map[string]func(e audit.Entry) bool{
		"attributed-calls": func(e audit.Entry) bool { return e.Action == "tool_invocation" && e.Caller != nil },
		"rate-limit-hits": func(e audit.Entry) bool {
			return e.Result == "blocked" && strings.Contains(string(e.Details), `"kind":"rate_limited"`)
		},
		"trust-revocations": func(e audit.Entry) bool {
			return e.Action == "trust_changed" && strings.Contains(string(e.Details), `"revoked":true`)
		},
		"refused-while-revoked": func(e audit.Entry) bool { return strings.Contains(strings.Join(e.Rules, ","), "builtin:trust-revoked") },
		"phi-outputs": func(e audit.Entry) bool {
			return e.Result == "redacted" && (strings.Contains(e.Reason, "medical-record-number") || strings.Contains(e.Reason, "us-ssn"))
		},
		"phi-params":       func(e audit.Entry) bool { return strings.Contains(string(e.Params), "[REDACTED:us-ssn]") },
		"api-keys-revoked": func(e audit.Entry) bool { return e.Action == "api_key_revoked" },
		"identity-keys":    func(e audit.Entry) bool { return e.Action == "key_rotated" || e.Action == "identity_created" },
	}
	seen := 0
	for _, c := range rep.Controls {
		for _, ev := range c.Evidence {
			match, ok := recount[ev.ID]
			if !ok {
				continue
			}
			seen++
			var n int64
			var first, last uint64
			for _, e := range entries {
				if inPeriod(e) && match(e) {
					if n == 0 {
						first = e.Seq
					}
					last = e.Seq
					n++
				}
			}
			if n == 0 || ev.Count != n || *ev.FirstSeq != first || *ev.LastSeq != last {
				t.Errorf("%s/%s: report %d entries (seqs %s), the log %d (%d-%d)", c.ID, ev.ID, ev.Count, seqsOf(ev), n, first, last)
			}
		}
	}
	if seen < 3 {
		t.Errorf("recounted only %d pieces of evidence", seen)
	}
	// Verification runs: each accepted one has the root of that many
	// entries and a record signed by the identity that says so.
	accepted := 0
	for _, c := range rep.Controls {
		for _, v := range c.Verifications {
			if !v.Accepted {
				continue
			}
			accepted++
			if v.Root != rootOf(v.Size) || v.CheckpointRoot != v.Root {
				t.Errorf("verification at %s: root %s, checkpoint %s, entries %s", v.At, v.Root, v.CheckpointRoot, rootOf(v.Size))
			}
			n, err := note.Open([]byte(v.Note), verifiers)
			if err != nil || !strings.Contains(n.Text, fmt.Sprintf("\nfull\n%d\n%s\n", v.Size, v.Root)) {
				t.Errorf("verification record at %s: %v\n%s", v.At, err, v.Note)
			}
		}
	}
	if accepted == 0 {
		t.Error("no accepted verification")
	}
}

func seqsOf(ev compliance.EvidenceResult) string {
	if ev.FirstSeq == nil {
		return "none"
	}
	return fmt.Sprintf("%d-%d", *ev.FirstSeq, *ev.LastSeq)
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// hipaaCorpus is testdata/hipaa/corpus.json: synthetic PHI and look-alikes.
type hipaaCorpus struct {
	PHI []struct {
		ID     string      `json:"id"`
		Text   string      `json:"text"`
		Values [][2]string `json:"values"` // [rule, value]
	} `json:"phi"`
	Lookalikes []struct {
		ID, Text, Why string
	} `json:"lookalikes"`
}

const hipaaConfig = `agent: {name: clinic, sponsor: privacy@clinic.example}
state_dir: state
compliance: [hipaa]
scopes:
  - {resources: ["filesystem:/data/*", "filesystem:/scratch/*"], actions: [read, list, write], ttl_minutes: 15}
tools:
  filesystem:
    roots:
      - {path: data, mount: /data, access: read}
      - {path: scratch, mount: /scratch, access: read-write}
`

// TestHIPAACorpusThroughServe sends every corpus item through a real
// `serve` under compliance: [hipaa], twice: as the content param of a
// filesystem_write (params land in the audit log: the write-ahead intent
// and the call's entry) and as the output of a filesystem_read of the
// file written. Every PHI value must be gone from the output and from both
// entries' params, replaced by its rule's marker; every look-alike must
// come back and be logged unchanged.
func TestHIPAACorpusThroughServe(t *testing.T) {
	b, err := os.ReadFile("testdata/hipaa/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus hipaaCorpus
	if err := json.Unmarshal(b, &corpus); err != nil {
		t.Fatal(err)
	}
	for _, p := range corpus.PHI {
		for _, v := range p.Values {
			if strings.Count(p.Text, v[1]) != 1 {
				t.Fatalf("%s: value %q must occur exactly once in its text", p.ID, v[1])
			}
		}
	}
	w := newWorkspace(t)
	w.write("agentmesh.yaml", hipaaConfig)
	if err := os.MkdirAll(w.dir+"/scratch", 0o700); err != nil {
		t.Fatal(err)
	}
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{}
	send := func(id, text string) {
		path := "/scratch/" + id + ".txt"
		if out, isErr := s.call(t, "filesystem_write", map[string]any{"path": path, "content": text}); isErr {
			t.Fatalf("%s: write refused: %s", id, out)
		}
		out, isErr := s.call(t, "filesystem_read", map[string]any{"path": path})
		if isErr {
			t.Fatalf("%s: read refused: %s", id, out)
		}
		outputs[id] = out
	}
	for _, p := range corpus.PHI {
		send(p.ID, p.Text)
	}
	for _, l := range corpus.Lookalikes {
		send(l.ID, l.Text)
	}
	stop()

	// The params each write was logged with: intent and outcome.
	logged := map[string][]string{}
	for _, raw := range w.exported() {
		e, err := audit.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		if e.Tool != "filesystem_write" {
			continue
		}
		var params struct{ Path, Content string }
		if err := json.Unmarshal(e.Params, &params); err != nil {
			t.Fatalf("seq %d: params %s", e.Seq, e.Params)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(params.Path, "/scratch/"), ".txt")
		logged[id] = append(logged[id], params.Content)
	}

	var values, outRedacted, paramRedacted, fn, fp, lookOK int
	for _, p := range corpus.PHI {
		if len(logged[p.ID]) != 2 {
			t.Errorf("%s: %d audit entries with its params, want the intent and the call", p.ID, len(logged[p.ID]))
		}
		for _, v := range p.Values {
			values++
			rule, value := v[0], v[1]
			marker := "[REDACTED:" + rule + "]"
			out := outputs[p.ID]
			if strings.Contains(out, value) || !strings.Contains(out, marker) {
				fn++
				t.Errorf("%s output: %s %q not redacted as %s:\n%s", p.ID, rule, value, marker, out)
			} else {
				outRedacted++
			}
			ok := len(logged[p.ID]) == 2
			for _, content := range logged[p.ID] {
				if strings.Contains(content, value) || !strings.Contains(content, marker) {
					ok = false
					t.Errorf("%s params: %s %q not redacted as %s:\n%s", p.ID, rule, value, marker, content)
				}
			}
			if ok {
				paramRedacted++
			} else {
				fn++
			}
		}
	}
	for _, l := range corpus.Lookalikes {
		ok := outputs[l.ID] == l.Text && len(logged[l.ID]) == 2
		for _, content := range logged[l.ID] {
			ok = ok && content == l.Text
		}
		if ok {
			lookOK++
		} else {
			fp++
			t.Errorf("%s (%s) changed:\n in  %q\n out %q\n params %q", l.ID, l.Why, l.Text, outputs[l.ID], logged[l.ID])
		}
	}
	t.Logf("HIPAA corpus through serve: %d PHI items holding %d PHI values, %d look-alikes; "+
		"redacted in outputs %d/%d, in audit params (intent and call) %d/%d; look-alikes unchanged %d/%d; "+
		"false negatives %d, false positives %d", len(corpus.PHI), values, len(corpus.Lookalikes),
		outRedacted, values, paramRedacted, values, lookOK, len(corpus.Lookalikes), fn, fp)
	if fmt.Sprint(fn, fp) != "0 0" {
		t.Errorf("false negatives %d, false positives %d", fn, fp)
	}
}

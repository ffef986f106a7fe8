package policy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"gopkg.in/yaml.v3"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// fuzzCalls are evaluated against every policy the fuzzer manages to load.
var fuzzCalls = []Call{
	{Tool: "api_call", Agent: "did:agentmesh:a", TrustScore: 800, Params: map[string]any{"url": "https://api.weather.com/v1"}},
	{Tool: "database_query", TrustScore: 100, Params: map[string]any{"query": "DROP TABLE x", "n": 3.0, "xs": []any{1.0, "a", nil}}},
	{Tool: "filesystem_read", Params: map[string]any{"path": "/data/../etc/passwd"}, Upstream: "u", Method: "resources/read", URI: "file:///x"},
	{},
}

func FuzzLoadPolicy(f *testing.F) {
	f.Add([]byte(seedRateLimit))
	f.Add([]byte(seedSanitize))
	f.Add(DefaultYAML)
	f.Add([]byte(decisionPolicies))
	vectors, _ := filepath.Glob(filepath.Join(vectorsDir, "*.yaml"))
	for _, v := range vectors {
		if data, err := os.ReadFile(v); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile("f.yaml", data)
		if err != nil {
			for _, e := range yamlpos.Errors(err) {
				if e.File != "f.yaml" || e.Line < 0 || e.Line > lineCount(data) {
					t.Fatalf("error outside the file: %v", e)
				}
			}
			return
		}
		set, err := NewSet(file)
		if err != nil {
			return
		}
		e := NewEngine(set, Options{Secrets: fakeSecrets{}})
		ctx := context.Background()
		for i := range fuzzCalls {
			d := e.PreCall(ctx, &fuzzCalls[i])
			if d.Action.Rank() < 0 || (d.Error != "" && d.Action != Block) {
				t.Fatalf("decision %+v", d)
			}
			e.PostCall(ctx, &fuzzCalls[i], "password: hunter2 sk-1")
		}
	})
}

// lineCount counts lines as YAML does: "\n", "\r\n" and a lone "\r" end
// one.
func lineCount(data []byte) int {
	return 1 + bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n"))
}

func FuzzCompileCondition(f *testing.F) {
	for _, c := range []string{
		"tool == 'api_call'",
		"output contains 'password' or output contains 'api_key'",
		"tool == 'database_query' and string(params.query ?? '') matches `(?i)\\bdrop\\b`",
		"trust_score < 500",
		"glob('/data/*', params.path ?? '') and not has_secret(output)",
		"any(params.xs ?? [], {# == 'a'}) or len(params) > 2",
		"tool == 'x' junk",
		"tool in ['a', 'b'] and upstream_tool != uri",
		"int(params.n) > 2 || params.m?.k == nil",
		"tool == 1",
	} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, cond string) {
		c, cerr := compileCondition(cond)
		if cerr != nil {
			if cerr.Offset < 0 || cerr.Offset > utf8.RuneCountInString(cond) {
				t.Fatalf("offset %d outside the condition (%d runes)", cerr.Offset, utf8.RuneCountInString(cond))
			}
			checkPosInYAML(t, cond, cerr.Offset)
			return
		}
		r := &Rule{ID: "f/#0", Policy: "f", counter: "#0", Action: Block, Enabled: true, Stage: c.stage, program: c.program}
		set, err := NewSet(&File{Path: "f.yaml", DefaultAction: Allow, Policies: []*Policy{{Name: "f", Enabled: true, Rules: []*Rule{r}}}})
		if err != nil {
			t.Fatal(err)
		}
		e := NewEngine(set, Options{Secrets: fakeSecrets{}})
		if c.tools != nil { // the guard must agree with running the condition
			for i := range fuzzCalls {
				st := newEvalState(e)
				st.begin(context.Background(), set, c.stage, &fuzzCalls[i], "out", nil)
				out, err := expr.Run(c.program, st.env)
				if !slices.Contains(c.tools, fuzzCalls[i].Tool) && (err != nil || out != false) {
					t.Fatalf("guard %v skips tool %q, but the condition gives %v, %v", c.tools, fuzzCalls[i].Tool, out, err)
				}
			}
		}
		for i := range fuzzCalls {
			for _, d := range []Decision{e.PreCall(context.Background(), &fuzzCalls[i]), e.PostCall(context.Background(), &fuzzCalls[i], "out")} {
				if d.Action != Allow && d.Action != Block {
					t.Fatalf("decision %+v", d)
				}
			}
		}
	})
}

// checkPosInYAML writes cond into a YAML file as yaml.v3 would quote it
// and checks that the error position maps into that file.
func checkPosInYAML(t *testing.T, cond string, offset int) {
	doc, err := yaml.Marshal(map[string]string{"condition": cond})
	if err != nil {
		return
	}
	var v struct {
		Condition string      `yaml:"condition"`
		Pos       yamlpos.Pos `pos:"condition"`
	}
	if err := yamlpos.Decode("f.yaml", doc, &v); err != nil || v.Condition != cond {
		return
	}
	pos := exprPos(doc, v.Pos, cond, offset)
	lines := strings.Split(string(doc), "\n")
	if pos.Line < 1 || pos.Line > len(lines) || pos.Column < 1 || pos.Column > utf8.RuneCountInString(lines[pos.Line-1])+1 {
		t.Fatalf("offset %d of %q maps to %v, outside\n%s", offset, cond, pos, doc)
	}
}

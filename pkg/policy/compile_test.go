package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

func TestCompileConditions(t *testing.T) {
	tests := []struct {
		cond   string
		stage  Stage
		err    string // substring; "" means it compiles
		offset int
	}{
		{cond: "tool == 'api_call'", stage: PreCall},
		{cond: "output contains 'password' or output contains 'api_key'", stage: PostCall},
		{cond: "has_secret(output)", stage: PostCall},
		{cond: "tool == 'output'", stage: PreCall}, // a string, not the variable
		{cond: "all(params.items ?? [], {.output == 1})", stage: PreCall},
		{cond: "trust_score >= 500 and agent startsWith 'did:agentmesh:'", stage: PreCall},
		{cond: "glob('/data/*', params.path ?? '') and lower(tool) in ['a', 'b']", stage: PreCall},
		{cond: "upstream == 'gh' and upstream_tool == 'x' and method == 'tools/call' and uri == '' and client == 'c'", stage: PreCall},
		{cond: "string(params.q ?? '') matches `(?i)\\bdrop\\b`", stage: PreCall},
		{cond: "count(params.xs ?? [], {# > 1}) > 2 and len(toJSON(params)) < 100", stage: PreCall},

		{cond: "tool == 'x' junk", err: `unexpected token Identifier("junk")`, offset: 12},
		{cond: "tool = 'x'", err: "unexpected token", offset: 5},
		{cond: "tools == 'x'", err: "unknown name tools (variables: agent, caller, client,", offset: 0},
		{cond: "tool == 1", err: "mismatched types string and int", offset: 5},
		{cond: "trust_score", err: "must be true or false, but this one is int"},
		{cond: "matches(tool, 'x')", err: "matches is an operator"},
		{cond: "tool matches '('", err: "error parsing regexp", offset: 5},
		{cond: "tool matches params.re", err: "must be a string literal", offset: 13},
		{cond: "now() > 0", err: "now is not available in conditions"},
		{cond: "repeat(tool, 9) == ''", err: "repeat is not available"},
		{cond: "fromJSON(output).a == 1", err: "fromJSON is not available"},
		{cond: "let x = 1; x == 1", err: "let is not allowed", offset: 4}, // expr locates let at its name
		{cond: "1..3 == [1]", err: "ranges (a..b) are not allowed", offset: 0},
		{cond: "any(params.a ?? [], {any(params.b ?? [], {true})})", err: "predicates cannot be nested", offset: 41},
		{cond: "$env.tool == 'x'", err: "$env is not available"},
		{cond: "", err: "empty condition"},
		{cond: "   ", err: "empty condition"},
		{cond: "(tool == 'x'", err: "left open", offset: 11},
		{cond: strings.Repeat("tool == 'x' or ", 300) + "true", err: "longer than 4096 bytes"},
		{cond: strings.Repeat("1 + ", 150) + "1 > 0", err: "exceeds maximum allowed nodes", offset: -1},
		{cond: "tool == '\xff'", err: "not valid UTF-8"},
	}
	for _, tt := range tests {
		name := tt.cond
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			c, err := compileCondition(tt.cond)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if c.stage != tt.stage {
					t.Fatalf("stage = %s, want %s", c.stage, tt.stage)
				}
				return
			}
			if err == nil || !strings.Contains(err.Msg, tt.err) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.err)
			}
			if tt.offset >= 0 && err.Offset != tt.offset {
				t.Fatalf("offset = %d, want %d", err.Offset, tt.offset)
			}
		})
	}
}

func TestCheckCondition(t *testing.T) {
	if s, err := CheckCondition("output == ''"); err != nil || s != PostCall {
		t.Fatalf("CheckCondition = %s, %v", s, err)
	}
	_, err := CheckCondition("nope")
	var ce *ConditionError
	if !errors.As(err, &ce) || ce.Offset != 0 {
		t.Fatalf("CheckCondition(nope) = %v, want a *ConditionError", err)
	}
}

func TestExprPos(t *testing.T) {
	tests := []struct {
		name, yaml string
		offset     int
		want       string // line:col
	}{
		{"plain", "condition: tool == 'x' junk", 12, "1:24"},
		{"plain start", "condition: tool", 0, "1:12"},
		{"double quoted", `condition: "tool == 'x' junk"`, 12, "1:25"},
		{"double quoted escapes", `condition: "params.p == \"/etc\" and \u00e9 bad"`, 25, "1:45"},
		{"double quoted start", `condition: "tool"`, 0, "1:13"},
		{"single quoted", `condition: 'tool == ''x'' junk'`, 12, "1:27"},
		{"folded", "condition: >-\n  tool == 'x' and\n  foo == 1\n", 16, "3:3"},
		{"literal", "condition: |\n  tool == 'x'\n  and bar\n", 16, "3:7"},
		{"multi-line plain", "condition: tool == 'x'\n  and baz", 16, "2:7"},
		{"multi-line double quoted", "condition: \"tool == 'x'\n  and baz\"", 16, "2:7"},
		{"end of value", `condition: "(tool"`, 5, "1:18"},
		{"non-ASCII before", `condition: "'héllo' == tool junk"`, 20, "1:33"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc struct {
				Condition string      `yaml:"condition"`
				Pos       yamlpos.Pos `pos:"condition"`
			}
			if err := yamlpos.Decode("f.yaml", []byte(tt.yaml), &doc); err != nil {
				t.Fatal(err)
			}
			got := exprPos([]byte(tt.yaml), doc.Pos, doc.Condition, tt.offset)
			if s := fmt.Sprintf("%d:%d", got.Line, got.Column); s != tt.want {
				t.Fatalf("exprPos(%q, %d) = %s, want %s (value %q)", tt.yaml, tt.offset, s, tt.want, doc.Condition)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"/data/*", "/data", true},
		{"/data/*", "/data/users.json", true},
		{"/data/*", "/data/a/b/c", true},
		{"/data/*", "/database", false},
		{"/data/*", "/database/x", false},
		{"/data/*", "/etc/passwd", false},
		{"/data/*", "/data/../etc/passwd", false},
		{"/etc/*", "/data/../etc/passwd", true},
		{"/etc/*", "/etc/./shadow", true},
		{"/etc/*", "//etc//shadow", true},
		{"/data/users.json", "/data/users.json", true},
		{"/data/users.json", "/data/users.json/x", false},
		{"/logs/*.txt", "/logs/a.txt", true},
		{"/logs/*.txt", "/logs/a/b.txt", false}, // "*" stays within one component
		{"/logs/a*.txt", "/logs/b.txt", false},
		{"**/.env", "/srv/app/.env", true},
		{"**/.env", ".env", true},
		{"**/.ssh/**", "/home/u/.ssh/id_rsa", true},
		{"**/.ssh/**", "/home/u/ssh/id_rsa", false},
		{"**/*.pem", "/data/keys/server.pem", true},
		{"**/*.pem", "/data/keys/server.pem.txt", false},
		{"database_*", "database_query", true},
		{"database_*", "filesystem_read", false},
		{"https://api.weather.com/*", "https://api.weather.com/v1/today", true},
		{"https://api.weather.com/*", "https://api.weather.com.evil.org/v1", false},
		{"*", "anything", true},
		{"*", "a/b", false},
		{"", "", true},
		{"/a/**/z", "/a/z", true},
		{"/a/**/z", "/a/b/c/z", true},
		{"/a/**/z", "/a/b/c/y", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.path); got != tt.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestGlobInConditions(t *testing.T) {
	e := NewEngine(mustSet(t, `
policies:
  - name: g
    rules:
      - name: literal
        condition: glob('/data/*', params.path)
        action: audit
      - name: dynamic
        condition: glob(params.pattern ?? '/none', tool)
        action: warn
`), Options{})
	ctx := context.Background()
	tests := []struct {
		params map[string]any
		action Action
		err    bool
	}{
		{map[string]any{"path": "/data/x"}, Audit, false},
		{map[string]any{"path": "/database"}, Allow, false},
		{nil, Allow, false}, // a missing path matches nothing
		{map[string]any{"path": 3.0}, Block, true},
		{map[string]any{"pattern": "file*"}, Warn, false},
	}
	for _, tt := range tests {
		d := e.PreCall(ctx, &Call{Tool: "filesystem_read", Params: tt.params})
		if d.Action != tt.action || (d.Error != "") != tt.err {
			t.Errorf("params %v: %s (%s), want %s", tt.params, d.Action, d.Error, tt.action)
		}
	}
}

func TestToolGuard(t *testing.T) {
	tests := map[string][]string{
		"tool == 'api_call'":                               {"api_call"},
		"'api_call' == tool and trust_score < 5":           {"api_call"},
		"tool == 'a' and x() and y":                        nil, // does not compile; not reached
		"tool in ['a', 'b'] && params.x == 1":              {"a", "b"},
		"tool == 'a' and trust_score > 1 and agent == 'x'": {"a"},
		"trust_score > 1 and tool == 'a'":                  nil, // not leftmost: the left side runs first
		"tool == 'a' or tool == 'b'":                       nil,
		"not (tool == 'a')":                                nil,
		"tool != 'a'":                                      nil,
		"tool in ['a', upstream]":                          nil,
		"(tool == 'a') and output contains 'x'":            {"a"},
	}
	for cond, want := range tests {
		c, err := compileCondition(cond)
		if err != nil {
			if want != nil {
				t.Errorf("%s: %v", cond, err)
			}
			continue
		}
		if fmt.Sprint(c.tools) != fmt.Sprint(want) || (c.tools == nil) != (want == nil) {
			t.Errorf("toolGuard(%s) = %#v, want %#v", cond, c.tools, want)
		}
	}
}

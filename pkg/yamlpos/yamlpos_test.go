package yamlpos

import (
	"strings"
	"testing"
)

type rule struct {
	Pos       Pos    `pos:"."`
	CondPos   Pos    `pos:"condition"`
	Name      string `yaml:"name"`
	Condition string `yaml:"condition"`
	Limit     *int   `yaml:"limit"`
}

type doc struct {
	Rules []rule          `yaml:"rules"`
	Tags  map[string]bool `yaml:"tags"`
}

func TestDecodePositions(t *testing.T) {
	src := "rules:\n  - name: a\n    condition: \"tool == 'x'\"\n  - name: b\n    limit: 3\ntags: {x: true}\n"
	var d doc
	pos, err := DecodePositions("p.yaml", []byte(src), &d)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rules) != 2 || d.Rules[0].Condition != "tool == 'x'" || *d.Rules[1].Limit != 3 || !d.Tags["x"] {
		t.Fatalf("decoded %+v", d)
	}
	if got := d.Rules[0].CondPos.String(); got != "p.yaml:3:16" {
		t.Errorf("condition position = %s, want p.yaml:3:16", got)
	}
	if got := d.Rules[1].Pos.String(); got != "p.yaml:4:5" {
		t.Errorf("rule position = %s, want p.yaml:4:5", got)
	}
	if got := pos.Of("p.yaml", "rules[1].limit").String(); got != "p.yaml:5:12" {
		t.Errorf("positions[rules[1].limit] = %s", got)
	}
	if got := pos.Of("p.yaml", "rules[5]"); got.IsValid() {
		t.Errorf("absent path has a position: %v", got)
	}
}

func TestDecodeErrorsAllReported(t *testing.T) {
	src := "rules:\n  - nme: a\n    limit: lots\n  - name: [x]\nextra: 1\n"
	var d doc
	err := Decode("p.yaml", []byte(src), &d)
	list := Errors(err)
	want := []string{
		`p.yaml:2:5: unknown key "nme" in rules[0] (known keys: condition, limit, name)`,
		`p.yaml:3:12: rules[0].limit: expected an integer, got the string "lots"`,
		`p.yaml:4:11: rules[1].name must be a string, got a list`,
		`p.yaml:5:1: unknown key "extra" in the top level (known keys: rules, tags)`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if list[i].Error() != w {
			t.Errorf("error %d = %q, want %q", i, list[i].Error(), w)
		}
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	var v struct {
		M map[string][]any `yaml:"m"`
	}
	src := "m:\n" + indentLines(b.String())
	err := Decode("bomb.yaml", []byte(src), &v)
	if err == nil {
		t.Fatal("alias bomb decoded without error")
	}
}

func TestSyntaxError(t *testing.T) {
	err := Decode("s.yaml", []byte("a: [\n"), &doc{})
	if err == nil || !strings.HasPrefix(err.Error(), "s.yaml:") || !strings.Contains(err.Error(), "YAML syntax error") {
		t.Fatalf("syntax error = %v", err)
	}
}

func TestEmptyDocumentKeepsDefaults(t *testing.T) {
	lim := 7
	d := doc{Rules: []rule{{Name: "default", Limit: &lim}}}
	if err := Decode("e.yaml", []byte("# only a comment\n"), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Rules) != 1 || d.Rules[0].Name != "default" {
		t.Fatalf("defaults lost: %+v", d)
	}
}

func indentLines(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

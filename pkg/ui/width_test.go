package ui

import (
	"bytes"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

// Tables as agentmesh's commands print them: `audit`, `trust explain`,
// `tools list`, with the long values that used to break the borders.
var wideTables = []struct {
	name    string
	headers []string
	rows    [][]string
	// keep must appear whole in the table at width 100.
	keep []string
}{
	{
		name:    "audit",
		headers: []string{"seq", "time", "action", "tool", "result", "trust", "reason", "target"},
		rows: [][]string{
			{"41→42", "2026-01-31T10:00:00Z", "tool_invocation", "filesystem_read", "✓ allowed", "800", "matched allow-reports [house/allow-reports]", "/data/reports/2026/q1/regional-breakdown-final-v2.csv"},
			{"43", "2026-01-31T10:00:01Z", "tool_invocation", "api_call", "✗ blocked", "700", "scope: the credential does not grant call api:https://exfil.example.com/upload?data=… [builtin:scope]", "https://exfil.example.com/upload?data=c2VjcmV0cyBnbyBoZXJl"},
			{"44", "2026-01-31T10:00:02Z", "tool_intent", "database_query", "… no outcome yet", "", "", "users: SELECT * FROM users WHERE email LIKE…"},
		},
		keep: []string{"41→42", "2026-01-31T10:00:00Z", "✗ blocked"},
	},
	{
		name:    "trust explain",
		headers: []string{"seq", "time", "event", "tool", "change", "score", "note"},
		rows: [][]string{
			{"12", "2026-01-31T10:00:00Z", "policy_block", "filesystem_read", "-100", "700", "critical violation of house/no-secret-dir: params.path startsWith '/data/notes' → blocked; three more and access is revoked until `agentmesh trust reset`"},
			{"13", "2026-01-31T10:05:00Z", "recovery", "", "+5", "705", "clean calls recover the score slowly"},
		},
		keep: []string{"2026-01-31T10:00:00Z", "policy_block", "filesystem_read"},
	},
	{
		name:    "tools list",
		headers: []string{"name", "upstream", "upstream tool", "status", "definition", "flags"},
		rows: [][]string{
			{"github__create_or_update_file_contents", "github-enterprise-mirror", "create_or_update_file_contents", "changed", "3f1c0b5a9e2d", "hidden-instruction-tag,instruction-override,sensitive-file,secret-exfiltration,cross-tool-reference"},
			{"fx__echo", "fixture", "echo", "approved", "9a8b7c6d5e4f", ""},
		},
		keep: []string{"changed", "3f1c0b5a9e2d"},
	},
}

func TestTableFitsWidth(t *testing.T) {
	for _, tt := range wideTables {
		for _, width := range []int{100, 80, 60, 40, 24, 10} {
			var out bytes.Buffer
			o := &IO{Out: &out, OutTTY: true, Width: width}
			o.Rows(Table, tt.headers, tt.rows)
			s := strings.TrimSuffix(out.String(), "\n")
			if s == "" {
				t.Fatalf("%s at %d: no output", tt.name, width)
			}
			for _, line := range strings.Split(s, "\n") {
				if w := lipgloss.Width(line); w > width {
					t.Errorf("%s at width %d: line %d cells wide:\n%s", tt.name, width, w, s)
					break
				}
			}
			if width == 100 {
				for _, k := range tt.keep {
					if !strings.Contains(s, k) {
						t.Errorf("%s at width 100: %q was cut:\n%s", tt.name, k, s)
					}
				}
				if !strings.Contains(s, "…") {
					t.Errorf("%s at width 100: nothing shortened with an ellipsis:\n%s", tt.name, s)
				}
				if !strings.HasPrefix(s, "╭") || !strings.HasSuffix(s, "╯") {
					t.Errorf("%s at width 100: no borders:\n%s", tt.name, s)
				}
			}
		}
	}
}

// The free-text columns give way before the others: at 130 columns the
// audit table keeps seq, time, action, tool and result whole and cuts the
// reason and target.
func TestTableShrinksFreeTextFirst(t *testing.T) {
	var out bytes.Buffer
	o := &IO{Out: &out, OutTTY: true, Width: 130}
	tt := wideTables[0]
	o.Rows(Table, tt.headers, tt.rows)
	s := out.String()
	for _, whole := range []string{"2026-01-31T10:00:01Z", "database_query", "tool_invocation", "… no outcome yet", "filesystem_read"} {
		if !strings.Contains(s, whole) {
			t.Errorf("%q was cut before the free-text columns:\n%s", whole, s)
		}
	}
	if strings.Contains(s, "regional-breakdown-final-v2.csv") || strings.Contains(s, "[builtin:scope]") {
		t.Errorf("free-text columns not shortened:\n%s", s)
	}
}

// A table that fits is drawn as it is, whatever the width.
func TestTableThatFitsIsUnchanged(t *testing.T) {
	render := func(width int) string {
		var out bytes.Buffer
		(&IO{Out: &out, OutTTY: true, Width: width}).Rows(Table, []string{"seq", "tool"}, [][]string{{"1", "filesystem_read"}, {"10", "api_call"}})
		return out.String()
	}
	a, b := render(40), render(400)
	if a != b || strings.Contains(a, "…") {
		t.Errorf("width 40:\n%s\nwidth 400:\n%s", a, b)
	}
	if !strings.Contains(a, "│ 10  │ api_call        │") {
		t.Errorf("unexpected layout:\n%s", a)
	}
}

// Text (a pipe, a file) keeps every value whole, whatever the width.
func TestTextIsNotTruncated(t *testing.T) {
	for _, tt := range wideTables {
		var out bytes.Buffer
		o := &IO{Out: &out, Width: 60}
		o.Rows(Text, tt.headers, tt.rows)
		s := out.String()
		for _, r := range tt.rows {
			for _, c := range r {
				if !strings.Contains(s, c) {
					t.Errorf("%s: text output lacks %q:\n%s", tt.name, c, s)
				}
			}
		}
	}
}

// Columns are aligned by display width: "✓" and "→" are one cell each
// but three bytes.
func TestTextAlignsByDisplayWidth(t *testing.T) {
	var out bytes.Buffer
	(&IO{Out: &out}).Rows(Text, []string{"seq", "result", "trust"}, [][]string{{"41→42", "✓ allowed", "800"}, {"43", "error", "1"}})
	want := "SEQ    RESULT     TRUST\n41→42  ✓ allowed  800\n43     error      1\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestRowsWithoutHeaders(t *testing.T) {
	for _, f := range []Format{Text, Table} {
		var out bytes.Buffer
		(&IO{Out: &out, Width: 100}).Rows(f, nil, [][]string{{"5", "api_call", "✗ blocked"}})
		if s := out.String(); !strings.Contains(s, "api_call") || strings.Contains(s, "SEQ") {
			t.Errorf("%s: %q", f, s)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in    string
		width int
		want  string
	}{
		{"filesystem_read", 20, "filesystem_read"},
		{"filesystem_read", 15, "filesystem_read"},
		{"filesystem_read", 14, "filesystem_re…"},
		{"✓ allowed", 5, "✓ al…"},
		{"41→42→43", 4, "41→…"},
		{"a b", 3, "a b"},
		{"a b c", 3, "a…"},
		{"日本語のテキスト", 7, "日本語…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"line one\nline two is long", 8, "line one\nline tw…"},
	}
	for _, tt := range tests {
		got := Truncate(tt.in, tt.width)
		if got != tt.want || lipgloss.Width(got) > max(tt.width, 0) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestTerminalWidthFallback(t *testing.T) {
	tests := []struct {
		columns string
		want    int
	}{
		{"", DefaultWidth}, {"80", 80}, {" 132 ", 132}, {"wide", DefaultWidth}, {"-5", DefaultWidth}, {"0", DefaultWidth},
	}
	for _, tt := range tests {
		// -1 is no terminal: GetSize fails.
		if got := terminalWidth(-1, tt.columns); got != tt.want {
			t.Errorf("terminalWidth(COLUMNS=%q) = %d, want %d", tt.columns, got, tt.want)
		}
	}
	if (&IO{}).width() != DefaultWidth {
		t.Error("an IO without Width does not fall back to DefaultWidth")
	}
}

func TestRowStream(t *testing.T) {
	headers := []string{"seq", "time", "tool", "reason"}
	first := [][]string{{"0", "2026-01-31T10:00:00Z", "filesystem_read", ""}, {"1", "2026-01-31T10:00:01Z", "api_call", "ok"}}
	later := []string{"2", "2026-01-31T10:00:02Z", "code_execute", "a reason long enough to be cut on a narrow terminal, and then some more words"}

	var out bytes.Buffer
	s := (&IO{Out: &out}).StreamRows(Text, headers)
	s.Rows(nil) // nothing yet: no header either
	if out.Len() != 0 {
		t.Fatalf("header printed before any row: %q", out.String())
	}
	s.Rows(first)
	s.Rows([][]string{later})
	s.Rows([][]string{{"3", "2026-01-31T10:00:03Z", "api_call", "x"}})
	want := `SEQ  TIME                  TOOL             REASON
0    2026-01-31T10:00:00Z  filesystem_read
1    2026-01-31T10:00:01Z  api_call         ok
2    2026-01-31T10:00:02Z  code_execute     ` + later[3] + `
3    2026-01-31T10:00:03Z  api_call         x
`
	if out.String() != want {
		t.Errorf("text stream:\n%s\nwant\n%s", out.String(), want)
	}

	out.Reset()
	s = (&IO{Out: &out, OutTTY: true, Width: 60}).StreamRows(Table, headers)
	s.Rows(first)
	s.Rows([][]string{later})
	got := out.String()
	if strings.Count(got, "SEQ") != 1 || !strings.Contains(got, "2026-01-31T10:00:02Z") || !strings.Contains(got, "…") {
		t.Errorf("terminal stream:\n%s", got)
	}
	for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if lipgloss.Width(line) > 60 {
			t.Errorf("terminal stream line wider than 60:\n%s", got)
		}
	}
}

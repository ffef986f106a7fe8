package database

import "testing"

func TestStatementLexer(t *testing.T) {
	cases := []struct {
		sql    string
		single bool
		first  string
	}{
		{"SELECT 1", true, "SELECT"},
		{"SELECT 1;", true, "SELECT"},
		{"SELECT 1; ", true, "SELECT"},
		{"SELECT 1;;\n;", true, "SELECT"},
		{"SELECT 1; -- done", true, "SELECT"},
		{"SELECT 1; /* done */", true, "SELECT"},
		{"SELECT 1; /* unterminated", true, "SELECT"},
		{"SELECT 1; /*", false, "SELECT"}, // a slash and a star, not a comment
		{"SELECT 1; SELECT 2", false, "SELECT"},
		{"SELECT ';'", true, "SELECT"},
		{"SELECT ';' ; DROP TABLE t", false, "SELECT"},
		{`SELECT "a;b" FROM t`, true, "SELECT"},
		{"SELECT `a;b` FROM t", true, "SELECT"},
		{"SELECT [a;b] FROM t", true, "SELECT"},
		{"SELECT 'it''s; fine'", true, "SELECT"},
		{`SELECT "x"";"`, true, "SELECT"},
		{"SELECT [a]];DROP TABLE t", false, "SELECT"}, // no escape inside [...]
		{"SELECT 1 -- ; DROP\n", true, "SELECT"},
		{"SELECT 1 -- c\n; DROP TABLE t", false, "SELECT"},
		{"SELECT 1 /* ; */ + 1", true, "SELECT"},
		{"SELECT 1 /* ; */ ; DELETE FROM t", false, "SELECT"},
		{"SELECT 'unterminated; DROP TABLE t", true, "SELECT"},
		{";SELECT 1", false, ""},
		{"  \n\t/* c */ -- d\n  dElEtE FROM t", true, "DELETE"},
		{"WITH x AS (SELECT 1) SELECT * FROM x", true, "WITH"},
		{"(SELECT 1)", true, ""},
		{"", true, ""},
	}
	for _, c := range cases {
		if got := singleStatement(c.sql); got != c.single {
			t.Errorf("singleStatement(%q) = %v, want %v", c.sql, got, c.single)
		}
		if got := firstKeyword(c.sql); got != c.first {
			t.Errorf("firstKeyword(%q) = %q, want %q", c.sql, got, c.first)
		}
	}
}

func TestDecide(t *testing.T) {
	// The policy is an allow-list: an action code it does not know is
	// denied, read-only or not.
	for _, ro := range []bool{true, false} {
		if _, ok := decide(ro, 9999, "", ""); ok {
			t.Errorf("readOnly=%v: an unknown action was allowed", ro)
		}
	}
}

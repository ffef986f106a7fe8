package secretref

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	env := map[string]string{"TOKEN": "t0k", "USER": "ann", "PASSWORD": "pw"}
	lookup := func(r Ref) (string, error) { return "<" + string(r.Scheme) + ":" + r.Arg + "=" + env[r.Arg] + ">", nil }
	tests := []struct {
		in   string
		refs []Ref
		want string // expanded with lookup
	}{
		{"", nil, ""},
		{"plain", nil, "plain"},
		{"${env:TOKEN}", []Ref{{Env, "TOKEN"}}, "<env:TOKEN=t0k>"},
		{"Bearer ${env:TOKEN}", []Ref{{Env, "TOKEN"}}, "Bearer <env:TOKEN=t0k>"},
		{"${env:USER}:${env:PASSWORD}", []Ref{{Env, "USER"}, {Env, "PASSWORD"}}, "<env:USER=ann>:<env:PASSWORD=pw>"},
		{"${file:secrets/wx token}", []Ref{{File, "secrets/wx token"}}, "<file:secrets/wx token=>"},
		{"${file:~/.config/x:y}", []Ref{{File, "~/.config/x:y"}}, "<file:~/.config/x:y=>"},
		{"${env:_A1}", []Ref{{Env, "_A1"}}, "<env:_A1=>"},
		// Escapes and literal dollars.
		{"$${env:TOKEN}", nil, "${env:TOKEN}"},
		{"a$${b}c", nil, "a${b}c"},
		{"pa$$word", nil, "pa$$word"},
		{"$5 and $HOME", nil, "$5 and $HOME"},
		{"$", nil, "$"},
		{"}{$}", nil, "}{$}"},
		{"$$${", nil, "$${"},
		{"$${env:A}${env:TOKEN}", []Ref{{Env, "TOKEN"}}, "${env:A}<env:TOKEN=t0k>"},
	}
	for _, tt := range tests {
		tpl, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := tpl.Refs(); !reflect.DeepEqual(got, tt.refs) {
			t.Errorf("Parse(%q).Refs() = %v, want %v", tt.in, got, tt.refs)
		}
		got, err := tpl.Expand(lookup)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q).Expand = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if lit, ok := tpl.Literal(); ok != (len(tt.refs) == 0) || ok && lit != tt.want {
			t.Errorf("Parse(%q).Literal() = %q, %v", tt.in, lit, ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Bearer ${env:TOKEN", "at byte 7: a reference starting with ${ has no closing }; write $${ for a literal ${"},
		{"${TOKEN}", "at byte 0: ${TOKEN} is not a reference: write ${env:TOKEN} for the environment variable, or $${ for a literal ${"},
		{"x${vault:kv/wx}", `at byte 1: unknown reference scheme "vault": want ${env:NAME} or ${file:PATH}`},
		{"${ENV:TOKEN}", `unknown reference scheme "ENV"`},
		{"${env:}", "${env:...} needs an environment variable name"},
		{"${env:1A}", "${env:...} needs an environment variable name"},
		{"${env:A-B}", "${env:...} needs an environment variable name"},
		{"${env: A}", "${env:...} needs an environment variable name"},
		{"${file:}", "${file:} needs a path"},
		{"${file:a\nb}", "without control characters"},
		{"${}", "not a reference: write ${env:NAME} or ${file:PATH}"},
		{"${hunter2 is my password}", "not a reference"},
		{"${a b:c}", "not a reference"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want a SyntaxError containing %q", tt.in, err, tt.want)
		}
	}
	// Errors never quote what they cannot name: a literal secret next to
	// a bad reference stays out of the message.
	_, err := Parse("${hunter2 is my password}")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error quotes the value: %v", err)
	}
	_, err = Parse("s3cr3t-literal ${env:X")
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error quotes the value: %v", err)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "${env:X}", "$${", "a$${b", "$", "$$", "${", "x}${y"} {
		tpl, err := Parse(Escape(s))
		if err != nil {
			t.Fatalf("Parse(Escape(%q)): %v", s, err)
		}
		if lit, ok := tpl.Literal(); !ok || lit != s {
			t.Errorf("Parse(Escape(%q)) = %q, %v", s, lit, ok)
		}
	}
}

func TestResolveEnv(t *testing.T) {
	r := Resolver{Getenv: func(k string) string { return map[string]string{"SET": "value-1", "EMPTY": ""}[k] }}
	if v, err := r.Resolve(Ref{Env, "SET"}); err != nil || v != "value-1" {
		t.Errorf("SET = %q, %v", v, err)
	}
	for _, name := range []string{"EMPTY", "UNSET"} {
		_, err := r.Resolve(Ref{Env, name})
		if err == nil || err.Error() != "${env:"+name+"}: environment variable "+name+" is not set (or empty)" {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestResolveFile(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".config"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("token", "tok-123\n", 0o600)
	write("crlf", "tok-crlf\r\n", 0o400)
	write("two-newlines", "tok\n\n", 0o600)
	write("inner", "line1\nline2", 0o600)
	write("empty", "", 0o600)
	write("just-newline", "\n", 0o600)
	write("readable", "tok", 0o644)
	write("group", "tok", 0o640)
	write("group-write", "tok", 0o620)
	write("big", strings.Repeat("x", MaxFileBytes+1), 0o600)
	write("max", strings.Repeat("x", MaxFileBytes), 0o600)
	if err := os.WriteFile(filepath.Join(home, ".config", "t"), []byte("from-home"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "token"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "readable"), filepath.Join(dir, "link-to-readable")); err != nil {
		t.Fatal(err)
	}
	r := Resolver{Dir: dir, Home: home}
	good := []struct{ arg, want string }{
		{"token", "tok-123"},
		{"./token", "tok-123"},
		{filepath.Join(dir, "token"), "tok-123"},
		{"crlf", "tok-crlf"},
		{"two-newlines", "tok\n"},
		{"inner", "line1\nline2"},
		{"link", "tok-123"},
		{"~/.config/t", "from-home"},
		{"max", strings.Repeat("x", MaxFileBytes)},
	}
	for _, g := range good {
		if v, err := r.Resolve(Ref{File, g.arg}); err != nil || v != g.want {
			t.Errorf("file %s = %.20q, %v; want %.20q", g.arg, v, err, g.want)
		}
	}
	bad := []struct{ arg, want string }{
		{"missing", "${file:missing}: " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"empty", "is empty"},
		{"just-newline", "is empty"},
		{"big", "is larger than 65536 bytes"},
		{".", "is not a regular file"},
	}
	if runtime.GOOS != "windows" {
		bad = append(bad, []struct{ arg, want string }{
			{"readable", "${file:readable}: secret file is accessible by others: " + filepath.Join(dir, "readable") + " has mode 0644; a secret file must be accessible by its owner only: run chmod 600 " + filepath.Join(dir, "readable")},
			{"group", "has mode 0640"},
			{"group-write", "has mode 0620"},
			{"link-to-readable", "has mode 0644"},
		}...)
	}
	for _, b := range bad {
		_, err := r.Resolve(Ref{File, b.arg})
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("file %s: %v, want %q", b.arg, err, b.want)
		}
		if err != nil && strings.Contains(err.Error(), "tok") {
			t.Errorf("file %s: the error holds the file's contents: %v", b.arg, err)
		}
	}
	if _, err := (Resolver{Dir: dir}).Resolve(Ref{File, "~/x"}); err == nil || !strings.Contains(err.Error(), "no home directory") {
		t.Errorf("~ without a home: %v", err)
	}
	if _, err := (Resolver{}).Resolve(Ref{File, "rel"}); err == nil || !strings.Contains(err.Error(), "relative path") {
		t.Errorf("relative without a directory: %v", err)
	}
}

// TestResolveFIFO: a named pipe is refused without blocking on it.
func TestResolveFIFO(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no FIFOs")
	}
	p := filepath.Join(t.TempDir(), "fifo")
	if err := mkfifo(p); err != nil {
		t.Skip(err)
	}
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v", err)
	}
}

package secretref

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts it writes back
// (Template.String) to text that parses to the same template; every
// reference it reports has a known scheme and a well-formed argument; an
// error points at a "${"; and any text, escaped, is read back as that
// literal text.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${env:TOKEN}", "Bearer ${env:TOKEN}", "${env:A}:${env:B}", "${file:~/x}", "${file:./a b}",
		"$${env:X}", "$$${", "pa$$word", "$", "${", "${}", "${TOKEN}", "${vault:x}", "${env:1}", "${file:}", "}${",
		"${env:A}$${env:B}${file:c}", "$${", "${env:A", "\x00${env:\x00}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tpl, err := Parse(s)
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok || se.Offset < 0 || se.Offset >= len(s) || !strings.HasPrefix(s[se.Offset:], "${") {
				t.Fatalf("Parse(%q): %v is not a SyntaxError at a ${", s, err)
			}
			return
		}
		for _, r := range tpl.Refs() {
			switch r.Scheme {
			case Env:
				if !validName(r.Arg) {
					t.Fatalf("Parse(%q): env reference %q", s, r.Arg)
				}
			case File:
				if r.Arg == "" || strings.ContainsAny(r.Arg, "}") || strings.ContainsFunc(r.Arg, isControl) {
					t.Fatalf("Parse(%q): file reference %q", s, r.Arg)
				}
			default:
				t.Fatalf("Parse(%q): scheme %q", s, r.Scheme)
			}
		}
		again, err := Parse(tpl.String())
		if err != nil || !reflect.DeepEqual(again, tpl) {
			t.Fatalf("Parse(%q).String() = %q parses to %+v, %v; want %+v", s, tpl.String(), again, err, tpl)
		}
		if len(tpl.Refs()) == 0 && !strings.Contains(s, "$${") {
			if lit, _ := tpl.Literal(); lit != s {
				t.Fatalf("Parse(%q) without references or escapes = %q", s, lit)
			}
		}
		lit, err := Parse(Escape(s))
		if err != nil {
			t.Fatalf("Parse(Escape(%q)): %v", s, err)
		}
		if got, ok := lit.Literal(); !ok || got != s {
			t.Fatalf("Parse(Escape(%q)) = %q, %v", s, got, ok)
		}
	})
}

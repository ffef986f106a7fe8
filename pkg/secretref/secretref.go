// Package secretref parses and resolves secret references in configuration
// values, so that agentmesh.yaml names where a credential is instead of
// holding it:
//
//	${env:NAME}   the value of environment variable NAME
//	${file:PATH}  the contents of file PATH, without one trailing newline
//
// # Syntax
//
// A value is literal text with any number of references in it: a
// reference may be the whole value ("${env:TOKEN}") or a part of it
// ("Bearer ${env:TOKEN}", "${env:USER}:${env:PASSWORD}"). The value is
// read left to right:
//
//   - "$${" is an escape: it stands for the literal text "${";
//   - "${" starts a reference, which ends at the next "}"; the scheme is
//     the text up to the first ":", and must be env or file;
//   - any other "$" is literal ("pa$word", "$5", "$HOME" stay as written).
//
// NAME is an environment variable name: ASCII letters, digits and "_",
// not starting with a digit. PATH is any text without "}" or control
// characters; a relative PATH is taken from the configuration file's
// directory and "~/" from the home directory (Resolver).
//
// Anything else after "${" is an error, never literal text: "${TOKEN}"
// (the form os.ExpandEnv used to expand) is refused with a hint to write
// "${env:TOKEN}", so a configuration written for the old form fails at
// validation instead of sending the literal text as a credential. Errors
// never quote the value being parsed (it may hold a literal secret); they
// name the byte offset, and the scheme or variable name where those are
// well formed.
//
// # Resolution
//
// Parsing happens when the configuration is validated; resolution only
// when a server starts (and, as a check, in `agentmesh status`), so
// agentmesh.yaml can be committed without its secrets. An unset or empty
// variable, a missing, empty or oversized file, and a file that group or
// others may access (filemode.OwnerOnly: the rule
// pkg/state applies to private keys) are
// errors: a reference that cannot be resolved is never replaced by "".
package secretref

import (
	"fmt"
	"strings"
)

// Scheme is where a reference's value comes from.
type Scheme string

// The schemes.
const (
	Env  Scheme = "env"
	File Scheme = "file"
)

// Ref is one reference: ${SCHEME:ARG}.
type Ref struct {
	Scheme Scheme
	// Arg is the variable name (env) or the path as written (file).
	Arg string
}

// String is the reference as written in a configuration file.
func (r Ref) String() string { return "${" + string(r.Scheme) + ":" + r.Arg + "}" }

// Template is a parsed value: literal text and references, in order.
type Template struct {
	parts []part
}

// part is literal text (ref nil) or a reference.
type part struct {
	lit string
	ref *Ref
}

// SyntaxError is a malformed reference. Msg never quotes the value.
type SyntaxError struct {
	// Offset is the byte offset of the "${" that starts the bad reference.
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Msg) }

// maxArg bounds a variable name or path.
const maxArg = 4096

// Parse reads a configuration value.
func Parse(s string) (Template, error) {
	var t Template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			lit.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return Template{}, &SyntaxError{Offset: i, Msg: "a reference starting with ${ has no closing }; write $${ for a literal ${"}
			}
			ref, err := parseRef(s[i+2:i+2+end], i)
			if err != nil {
				return Template{}, err
			}
			flush()
			t.parts = append(t.parts, part{ref: &ref})
			i += 2 + end + 1
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	flush()
	return t, nil
}

// parseRef reads the inside of ${...}; offset is where "${" starts.
func parseRef(body string, offset int) (Ref, error) {
	scheme, arg, hasColon := strings.Cut(body, ":")
	if !hasColon {
		if validName(body) {
			return Ref{}, &SyntaxError{Offset: offset, Msg: fmt.Sprintf("${%s} is not a reference: write ${env:%s} for the environment variable, or $${ for a literal ${", body, body)}
		}
		return Ref{}, &SyntaxError{Offset: offset, Msg: "not a reference: write ${env:NAME} or ${file:PATH}, or $${ for a literal ${"}
	}
	switch Scheme(scheme) {
	case Env:
		if !validName(arg) {
			return Ref{}, &SyntaxError{Offset: offset, Msg: "${env:...} needs an environment variable name: letters, digits and _, not starting with a digit"}
		}
		return Ref{Scheme: Env, Arg: arg}, nil
	case File:
		if arg == "" {
			return Ref{}, &SyntaxError{Offset: offset, Msg: "${file:} needs a path"}
		}
		if len(arg) > maxArg || strings.ContainsFunc(arg, isControl) {
			return Ref{}, &SyntaxError{Offset: offset, Msg: fmt.Sprintf("${file:...} needs a path of at most %d bytes without control characters", maxArg)}
		}
		return Ref{Scheme: File, Arg: arg}, nil
	}
	if validName(scheme) {
		return Ref{}, &SyntaxError{Offset: offset, Msg: fmt.Sprintf("unknown reference scheme %q: want ${env:NAME} or ${file:PATH}", scheme)}
	}
	return Ref{}, &SyntaxError{Offset: offset, Msg: "not a reference: write ${env:NAME} or ${file:PATH}, or $${ for a literal ${"}
}

func validName(s string) bool {
	if s == "" || len(s) > maxArg || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Refs are the template's references, in order (a reference written twice
// is listed twice).
func (t Template) Refs() []Ref {
	var refs []Ref
	for _, p := range t.parts {
		if p.ref != nil {
			refs = append(refs, *p.ref)
		}
	}
	return refs
}

// Expand returns the value with every reference replaced by what resolve
// returns for it; the first error stops it.
func (t Template) Expand(resolve func(Ref) (string, error)) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := resolve(*p.ref)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// Literal is the value of a template without references (escapes undone);
// ok is false when it has references.
func (t Template) Literal() (s string, ok bool) {
	if len(t.Refs()) > 0 {
		return "", false
	}
	s, _ = t.Expand(nil)
	return s, true
}

// String writes the template back in the syntax Parse reads.
func (t Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref != nil {
			b.WriteString(p.ref.String())
		} else {
			b.WriteString(Escape(p.lit))
		}
	}
	return b.String()
}

// Escape returns a value that Parse reads as the literal text s.
func Escape(s string) string { return strings.ReplaceAll(s, "${", "$${") }

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Claude Desktop's configuration is edited as an ordered JSON tree, so
// that rewriting it keeps the order of every key (encoding/json's maps
// would sort them). It is read as JSONC: // and /* */ comments and
// trailing commas are accepted, as Claude Desktop's own files sometimes
// have them. The output is plain JSON.

type jsonKind int

const (
	kindNull jsonKind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k jsonKind) String() string {
	return [...]string{"null", "a boolean", "a number", "a string", "an array", "an object"}[k]
}

// jsonValue is one JSON value; objects keep their keys in file order.
type jsonValue struct {
	kind    jsonKind
	members []jsonMember // kindObject
	items   []*jsonValue // kindArray
	// text is a string's decoded value, or the literal text of a number,
	// true, false or null (numbers are kept exactly as written).
	text string
	// off is the value's byte offset in the file, for messages.
	off int
}

type jsonMember struct {
	key   string
	value *jsonValue
}

func jsonString(s string) *jsonValue { return &jsonValue{kind: kindString, text: s} }

func jsonStrings(ss []string) *jsonValue {
	v := &jsonValue{kind: kindArray, items: []*jsonValue{}}
	for _, s := range ss {
		v.items = append(v.items, jsonString(s))
	}
	return v
}

func (v *jsonValue) index(key string) int {
	for i, m := range v.members {
		if m.key == key {
			return i
		}
	}
	return -1
}

func (v *jsonValue) get(key string) *jsonValue {
	if i := v.index(key); i >= 0 {
		return v.members[i].value
	}
	return nil
}

func (v *jsonValue) keys() []string {
	out := make([]string, len(v.members))
	for i, m := range v.members {
		out[i] = m.key
	}
	return out
}

// set replaces key's value where it is, or adds key at the end.
func (v *jsonValue) set(key string, val *jsonValue) {
	v.setAt(len(v.members), key, val)
}

// setAt replaces key's value where it is, or inserts key at position i.
func (v *jsonValue) setAt(i int, key string, val *jsonValue) {
	if j := v.index(key); j >= 0 {
		v.members[j].value = val
		return
	}
	v.members = slices.Insert(v.members, min(i, len(v.members)), jsonMember{key, val})
}

// setAfter replaces key's value where it is, or inserts key right after
// the key after (at the end if there is none).
func (v *jsonValue) setAfter(key, after string, val *jsonValue) {
	i := len(v.members)
	if j := v.index(after); j >= 0 {
		i = j + 1
	}
	v.setAt(i, key, val)
}

// strings returns an array of strings as a slice.
func (v *jsonValue) strings() ([]string, bool) {
	if v.kind != kindArray {
		return nil, false
	}
	out := make([]string, 0, len(v.items))
	for _, it := range v.items {
		if it.kind != kindString {
			return nil, false
		}
		out = append(out, it.text)
	}
	return out, true
}

// jsonSource is the file a tree was read from: its name and bytes (for
// FILE:LINE:COL messages) and how it was written (to write it back alike).
type jsonSource struct {
	name string
	data []byte
	// comments is set when the file had comments, which the output loses.
	comments bool
	indent   string
	crlf     bool
}

// parseClaudeConfig reads Claude Desktop's configuration as JSONC; no file
// or an empty one is an empty object.
func parseClaudeConfig(name string, data []byte) (*jsonValue, *jsonSource, error) {
	src := &jsonSource{name: name, data: data, indent: indentUnit(data), crlf: bytes.Contains(data, []byte("\r\n"))}
	p := &jsoncParser{src: src, pos: 0}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		p.pos = 3 // a UTF-8 byte order mark, as Windows editors write
	}
	if err := p.space(); err != nil {
		return nil, nil, err
	}
	if p.pos == len(data) {
		return &jsonValue{kind: kindObject}, src, nil
	}
	top, err := p.value()
	if err != nil {
		return nil, nil, err
	}
	if err := p.space(); err != nil {
		return nil, nil, err
	}
	if p.pos < len(data) {
		return nil, nil, p.errorf(p.pos, "unexpected %s after the end of the top-level value", p.found())
	}
	if top.kind != kindObject {
		return nil, nil, src.errorAt(top.off, "the file is %s, not a JSON object; fix or move it first, nothing was changed", top.kind)
	}
	return top, src, nil
}

// servers returns the mcpServers object, creating it if create is set and
// it is missing (or null).
func (src *jsonSource) servers(top *jsonValue, create bool) (*jsonValue, error) {
	s := top.get("mcpServers")
	if s == nil || s.kind == kindNull {
		if !create {
			return nil, nil
		}
		s = &jsonValue{kind: kindObject}
		top.set("mcpServers", s)
	}
	if s.kind != kindObject {
		return nil, src.errorAt(s.off, "mcpServers is %s, not a JSON object of servers; fix it first, nothing was changed", s.kind)
	}
	return s, nil
}

// errorAt is an error about the file at byte offset off: FILE:LINE:COL: ...
func (src *jsonSource) errorAt(off int, format string, args ...any) error {
	line, col := lineCol(src.data, off)
	return fmt.Errorf("%s:%d:%d: %s", src.name, line, col, fmt.Sprintf(format, args...))
}

// lineCol turns a byte offset into a 1-based line and column (in
// characters).
func lineCol(data []byte, off int) (int, int) {
	off = min(off, len(data))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// indentUnit guesses the file's indentation from its first indented line:
// a tab, or that many spaces; two spaces when nothing is indented.
func indentUnit(data []byte) string {
	lines := bytes.Split(data, []byte("\n"))
	for _, line := range lines[1:] {
		line = bytes.TrimRight(line, "\r")
		rest := bytes.TrimLeft(line, " \t")
		if len(rest) == 0 || len(rest) == len(line) || rest[0] == '*' || rest[0] == '/' {
			continue
		}
		if line[0] == '\t' {
			return "\t"
		}
		if n := len(line) - len(bytes.TrimLeft(line, " ")); n > 0 && n <= 8 {
			return strings.Repeat(" ", n)
		}
		break
	}
	return "  "
}

// format writes the tree as JSON, indented like the source, with a final
// newline.
func (src *jsonSource) format(v *jsonValue) []byte {
	var b bytes.Buffer
	writeJSON(&b, v, src.indent, 0)
	b.WriteByte('\n')
	out := b.Bytes()
	if src.crlf {
		out = bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
	}
	return out
}

func writeJSON(b *bytes.Buffer, v *jsonValue, unit string, depth int) {
	newline := func(d int) {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat(unit, d))
	}
	switch v.kind {
	case kindObject:
		if len(v.members) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, m := range v.members {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(depth + 1)
			writeJSONString(b, m.key)
			b.WriteString(": ")
			writeJSON(b, m.value, unit, depth+1)
		}
		newline(depth)
		b.WriteByte('}')
	case kindArray:
		if len(v.items) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, it := range v.items {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(depth + 1)
			writeJSON(b, it, unit, depth+1)
		}
		newline(depth)
		b.WriteByte(']')
	case kindString:
		writeJSONString(b, v.text)
	default:
		b.WriteString(v.text)
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// jsoncParser reads JSON with comments and trailing commas, keeping byte
// offsets for messages.
type jsoncParser struct {
	src   *jsonSource
	pos   int
	depth int
}

const maxJSONDepth = 1000

func (p *jsoncParser) errorf(off int, format string, args ...any) error {
	return p.src.errorAt(off, "%s; fix or move the file first, nothing was changed", fmt.Sprintf(format, args...))
}

// found describes the character at the current position.
func (p *jsoncParser) found() string {
	if p.pos >= len(p.src.data) {
		return "end of file"
	}
	r, _ := utf8.DecodeRune(p.src.data[p.pos:])
	return strconv.QuoteRune(r)
}

// space skips white space and comments.
func (p *jsoncParser) space() error {
	data := p.src.data
	for p.pos < len(data) {
		switch data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		case '/':
			start := p.pos
			switch {
			case bytes.HasPrefix(data[p.pos:], []byte("//")):
				if end := bytes.IndexByte(data[p.pos:], '\n'); end >= 0 {
					p.pos += end
				} else {
					p.pos = len(data)
				}
			case bytes.HasPrefix(data[p.pos:], []byte("/*")):
				end := bytes.Index(data[p.pos+2:], []byte("*/"))
				if end < 0 {
					return p.errorf(start, "this /* comment is never closed with */")
				}
				p.pos += 2 + end + 2
			default:
				return p.errorf(start, "unexpected '/' (comments start with // or /*)")
			}
			p.src.comments = true
		default:
			return nil
		}
	}
	return nil
}

func (p *jsoncParser) value() (*jsonValue, error) {
	if err := p.space(); err != nil {
		return nil, err
	}
	data := p.src.data
	if p.pos >= len(data) {
		return nil, p.errorf(p.pos, "the file ends where a value was expected")
	}
	start := p.pos
	switch c := data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &jsonValue{kind: kindString, text: s, off: start}, nil
	case c == '-' || c >= '0' && c <= '9':
		for p.pos < len(data) && strings.IndexByte("+-.0123456789eE", data[p.pos]) >= 0 {
			p.pos++
		}
		lit := string(data[start:p.pos])
		if !json.Valid([]byte(lit)) {
			return nil, p.errorf(start, "%q is not a valid number", lit)
		}
		return &jsonValue{kind: kindNumber, text: lit, off: start}, nil
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		for p.pos < len(data) && (data[p.pos] >= 'a' && data[p.pos] <= 'z' || data[p.pos] >= 'A' && data[p.pos] <= 'Z' || data[p.pos] >= '0' && data[p.pos] <= '9' || data[p.pos] == '_') {
			p.pos++
		}
		switch word := string(data[start:p.pos]); word {
		case "true", "false":
			return &jsonValue{kind: kindBool, text: word, off: start}, nil
		case "null":
			return &jsonValue{kind: kindNull, text: word, off: start}, nil
		default:
			return nil, p.errorf(start, "unexpected word %q where a value was expected (strings need double quotes)", word)
		}
	default:
		return nil, p.errorf(start, "unexpected %s where a value was expected", p.found())
	}
}

// str reads a double-quoted string; encoding/json decodes the escapes.
func (p *jsoncParser) str() (string, error) {
	data := p.src.data
	start := p.pos
	for i := start + 1; i < len(data); i++ {
		switch c := data[i]; {
		case c == '\\':
			i++
		case c == '"':
			var s string
			if err := json.Unmarshal(data[start:i+1], &s); err != nil {
				return "", p.errorf(start, "invalid string: %v", err)
			}
			p.pos = i + 1
			return s, nil
		case c == '\n':
			return "", p.errorf(start, "this string is not closed before the end of the line")
		case c < 0x20:
			return "", p.errorf(i, "control character %U in a string (write it as an escape such as \\t)", rune(c))
		}
	}
	return "", p.errorf(start, "this string is never closed")
}

func (p *jsoncParser) enter(off int) error {
	if p.depth++; p.depth > maxJSONDepth {
		return p.errorf(off, "nested more than %d levels deep", maxJSONDepth)
	}
	return nil
}

func (p *jsoncParser) object() (*jsonValue, error) {
	v := &jsonValue{kind: kindObject, off: p.pos}
	if err := p.enter(p.pos); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // {
	data := p.src.data
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(data) && data[p.pos] == '}' {
			// An empty object, or a trailing comma (JSONC).
			p.pos++
			return v, nil
		}
		if p.pos >= len(data) || data[p.pos] != '"' {
			return nil, p.errorf(p.pos, "expected a key in double quotes or '}', found %s", p.found())
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos >= len(data) || data[p.pos] != ':' {
			return nil, p.errorf(p.pos, "expected ':' after the key %q, found %s", key, p.found())
		}
		p.pos++
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		// A repeated key keeps its first place and takes the last value,
		// as JavaScript's JSON.parse (and so Claude Desktop) reads it.
		v.set(key, val)
		if err := p.space(); err != nil {
			return nil, err
		}
		switch {
		case p.pos < len(data) && data[p.pos] == ',':
			p.pos++
		case p.pos < len(data) && data[p.pos] == '}':
			p.pos++
			return v, nil
		default:
			return nil, p.errorf(p.pos, "expected ',' or '}' after the value of %q, found %s", key, p.found())
		}
	}
}

func (p *jsoncParser) array() (*jsonValue, error) {
	v := &jsonValue{kind: kindArray, off: p.pos, items: []*jsonValue{}}
	if err := p.enter(p.pos); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // [
	data := p.src.data
	for {
		if err := p.space(); err != nil {
			return nil, err
		}
		if p.pos < len(data) && data[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		item, err := p.value()
		if err != nil {
			return nil, err
		}
		v.items = append(v.items, item)
		if err := p.space(); err != nil {
			return nil, err
		}
		switch {
		case p.pos < len(data) && data[p.pos] == ',':
			p.pos++
		case p.pos < len(data) && data[p.pos] == ']':
			p.pos++
			return v, nil
		default:
			return nil, p.errorf(p.pos, "expected ',' or ']' after an array element, found %s", p.found())
		}
	}
}

package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of arrays and objects accepted in free-form
// JSON values (params, details), so that hostile input cannot exhaust the
// stack.
const maxJSONDepth = 128

// CanonicalJSON re-encodes one JSON value (RFC 8259) in the canonical form
// used for the free-form parts of an entry (params, details):
//
//   - no whitespace between tokens;
//   - object members sorted by key, comparing the keys' UTF-8 bytes;
//     duplicate keys are an error;
//   - array elements in their original order;
//   - strings written with the escaping rules of RFC 8785 §3.2.2.2:
//     quotation mark and reverse solidus as \" and \\; U+0008, U+0009,
//     U+000A, U+000C and U+000D as \b, \t, \n, \f and \r; other characters
//     below U+0020 as \u00xx with lower-case hex digits; every other
//     character, including '<', '>', '&', U+007F, U+2028 and U+2029, as its
//     literal UTF-8 bytes;
//   - numbers copied exactly as written (1, 1.0 and 1e0 stay distinct), after
//     checking them against the RFC 8259 number grammar;
//   - true, false and null unchanged.
//
// The input may be surrounded by whitespace but must hold exactly one value,
// nested at most 128 deep. Strings are decoded as encoding/json decodes them:
// bytes that are not valid UTF-8, and \u escapes of unpaired surrogates, become
// U+FFFD.
func CanonicalJSON(raw []byte) ([]byte, error) {
	p := jsonParser{s: raw}
	out, err := p.value(make([]byte, 0, len(raw)))
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonParser is a strict RFC 8259 parser producing canonical output.
type jsonParser struct {
	s     []byte
	i     int
	depth int
	// src, when set, is string(s): strings without escapes are returned
	// as substrings of it instead of being copied.
	src string
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipWS() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// end checks that only whitespace is left.
func (p *jsonParser) end() error {
	p.skipWS()
	if p.i != len(p.s) {
		return p.errorf("trailing data after the JSON value")
	}
	return nil
}

// expect consumes c, after optional whitespace.
func (p *jsonParser) expect(c byte) error {
	p.skipWS()
	if p.i >= len(p.s) {
		return p.errorf("unexpected end of input, expected %q", c)
	}
	if p.s[p.i] != c {
		return p.errorf("found %q, expected %q", p.s[p.i], c)
	}
	p.i++
	return nil
}

// value parses the value at p.i (after optional whitespace) and appends its
// canonical form to dst.
func (p *jsonParser) value(dst []byte) ([]byte, error) {
	p.skipWS()
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end of input, expected a value")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(dst)
	case c == '[':
		return p.array(dst)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendString(dst, s), nil
	case c == '-' || '0' <= c && c <= '9':
		lit, err := p.number()
		if err != nil {
			return nil, err
		}
		return append(dst, lit...), nil
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	default:
		return nil, p.errorf("unexpected character %q, expected a value", c)
	}
}

func (p *jsonParser) literal(dst []byte, lit string) ([]byte, error) {
	if !bytes.HasPrefix(p.s[p.i:], []byte(lit)) {
		return nil, p.errorf("invalid literal, expected %s", lit)
	}
	p.i += len(lit)
	return append(dst, lit...), nil
}

func (p *jsonParser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.errorf("nested deeper than %d levels", maxJSONDepth)
	}
	return nil
}

func (p *jsonParser) array(dst []byte) ([]byte, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.i++ // '['
	dst = append(dst, '[')
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		p.depth--
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = p.value(dst); err != nil {
			return nil, err
		}
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			dst = append(dst, ',')
		case ']':
			p.i++
			p.depth--
			return append(dst, ']'), nil
		default:
			return nil, p.errorf("found %q in array, expected ',' or ']'", p.s[p.i])
		}
	}
}

type canonMember struct {
	key        string
	start, end int // canonical value in the scratch buffer
}

func (p *jsonParser) object(dst []byte) ([]byte, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.i++ // '{'
	p.skipWS()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		p.depth--
		return append(dst, '{', '}'), nil
	}
	var mbuf [8]canonMember
	members := mbuf[:0]
	vals := make([]byte, 0, 128)
	for {
		p.skipWS()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.errorf("expected a string object key")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		start := len(vals)
		if vals, err = p.value(vals); err != nil {
			return nil, err
		}
		members = append(members, canonMember{key, start, len(vals)})
		p.skipWS()
		if p.i >= len(p.s) {
			return nil, p.errorf("unexpected end of input in object")
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.s[p.i] == '}' {
			p.i++
			break
		}
		return nil, p.errorf("found %q in object, expected ',' or '}'", p.s[p.i])
	}
	p.depth--
	slices.SortFunc(members, func(a, b canonMember) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			if m.key == members[i-1].key {
				return nil, fmt.Errorf("duplicate object key %q", m.key)
			}
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, vals[m.start:m.end]...)
	}
	return append(dst, '}'), nil
}

// number scans an RFC 8259 number and returns its literal.
func (p *jsonParser) number() ([]byte, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case digits() == 0:
		return nil, p.errorf("invalid number")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("invalid number: no digits after '.'")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number: no digits in exponent")
		}
	}
	return p.s[start:p.i], nil
}

// str parses the string at p.i (which holds '"') and returns its value.
func (p *jsonParser) str() (string, error) {
	p.i++
	start := p.i
	for p.i < len(p.s) { // fast path: nothing to decode
		c := p.s[p.i]
		if c == '"' {
			p.i++
			if len(p.src) == len(p.s) {
				return p.src[start : p.i-1], nil
			}
			return string(p.s[start : p.i-1]), nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.i++
	}
	buf := append([]byte(nil), p.s[start:p.i]...)
	for {
		if p.i >= len(p.s) {
			return "", p.errorf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("control character %q in string", c)
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", p.errorf("unterminated string")
			}
			switch e := p.s[p.i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r := hex4(p.s[p.i+2:])
				if r < 0 {
					return "", p.errorf("invalid \\u escape in string")
				}
				p.i += 6
				if utf16.IsSurrogate(r) {
					// A pair decodes to one character; anything else
					// to U+FFFD, as encoding/json does.
					if len(p.s) >= p.i+6 && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
						if r2 := hex4(p.s[p.i+2:]); r2 >= 0 {
							if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
								p.i += 6
								buf = utf8.AppendRune(buf, d)
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				return "", p.errorf("invalid escape %q in string", e)
			}
			p.i += 2
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.i++
		default:
			r, size := utf8.DecodeRune(p.s[p.i:])
			if r == utf8.RuneError && size == 1 {
				buf = append(buf, "\uFFFD"...)
			} else {
				buf = append(buf, p.s[p.i:p.i+size]...)
			}
			p.i += size
		}
	}
}

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendString appends s as a canonical JSON string (see [CanonicalJSON]).
// Bytes that are not valid UTF-8 are replaced by U+FFFD.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	// The run of bytes that are written as they are goes in one copy.
	plain := 0
	for plain < len(s) {
		c := s[plain]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
		plain++
	}
	dst = append(dst, s[:plain]...)
	for i := plain; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"':
				dst = append(dst, '\\', '"')
			case c == '\\':
				dst = append(dst, '\\', '\\')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

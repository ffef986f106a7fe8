package policy

import (
	"strconv"
	"unicode/utf8"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// exprPos maps an offset inside a condition (in runes, as expr reports it)
// to its position in the YAML file. start is where yaml.v3 says the scalar
// starts (its opening quote, block indicator or first character); value is
// the decoded scalar.
//
// The scalar is re-read from src in its own style: double-quoted escapes
// ("\\", "\x41", "\u00e9") are one character of the value, a single-quoted
// "”" is one quote; characters of the source that are not in the value
// (line folding, indentation, escaped line breaks) are skipped by matching
// the value against the source in order. When the source cannot be followed
// (it does not match the file, say), the scalar's start is returned.
func exprPos(src []byte, start yamlpos.Pos, value string, offset int) yamlpos.Pos {
	if !start.IsValid() || offset <= 0 {
		return valueStart(src, start)
	}
	i := byteOffset(src, start.Line, start.Column)
	if i < 0 || i >= len(src) {
		return start
	}
	line, col := start.Line, start.Column
	style := src[i]
	advance := func(n int) { // step over n bytes of src, tracking line:col
		for k := 0; k < n && i < len(src); {
			r, size := utf8.DecodeRune(src[i:])
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			i += size
			k += size
		}
	}
	switch style {
	case '"', '\'':
		advance(1)
	case '|', '>':
		for i < len(src) && src[i] != '\n' { // the block header
			advance(1)
		}
		advance(1)
	default:
		style = 0
	}
	target := []rune(value)
	if offset > len(target) {
		offset = len(target)
	}
	if len(target) == 0 {
		return valueStart(src, start)
	}
	for v := 0; i < len(src); {
		r, size := sourceRune(src[i:], style)
		if size == 0 { // the closing quote
			break
		}
		if r == target[v] {
			if v == offset {
				return yamlpos.Pos{File: start.File, Line: line, Column: col}
			}
			v++
			if v == len(target) { // offset == len: just past the value
				advance(size)
				return yamlpos.Pos{File: start.File, Line: line, Column: col}
			}
		}
		advance(size)
	}
	return start
}

// valueStart is the position of the first character of the scalar's value:
// one past an opening quote.
func valueStart(src []byte, start yamlpos.Pos) yamlpos.Pos {
	i := byteOffset(src, start.Line, start.Column)
	if i >= 0 && i < len(src) && (src[i] == '"' || src[i] == '\'') {
		start.Column++
	}
	return start
}

// sourceRune reads one character of a scalar's value from b in the given
// style (0 plain or block, '"' or '\”): the decoded rune and how many
// bytes of source it takes. size 0 means the scalar ends here.
func sourceRune(b []byte, style byte) (rune, int) {
	r, size := utf8.DecodeRune(b)
	switch style {
	case '\'':
		if r == '\'' {
			if len(b) > 1 && b[1] == '\'' {
				return '\'', 2
			}
			return 0, 0
		}
	case '"':
		if r == '"' {
			return 0, 0
		}
		if r == '\\' && len(b) > 1 {
			return unescape(b)
		}
	}
	return r, size
}

var simpleEscapes = map[byte]rune{
	'0': 0, 'a': '\a', 'b': '\b', 't': '\t', '\t': '\t', 'n': '\n', 'v': '\v', 'f': '\f',
	'r': '\r', 'e': 0x1b, ' ': ' ', '"': '"', '/': '/', '\\': '\\', 'N': 0x85, '_': 0xa0,
	'L': 0x2028, 'P': 0x2029,
}

// unescape decodes one YAML double-quoted escape sequence at the start of b.
func unescape(b []byte) (rune, int) {
	if r, ok := simpleEscapes[b[1]]; ok {
		return r, 2
	}
	width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[b[1]]
	if width > 0 && len(b) >= 2+width {
		if n, err := strconv.ParseUint(string(b[2:2+width]), 16, 32); err == nil {
			return rune(n), 2 + width
		}
	}
	return '\\', 1 // an escaped line break, or something yaml.v3 rejected
}

// byteOffset returns the byte offset of 1-based line:col (col counted in
// characters), or -1.
func byteOffset(src []byte, line, col int) int {
	i := 0
	for l := 1; l < line; l++ {
		for i < len(src) && src[i] != '\n' {
			i++
		}
		if i >= len(src) {
			return -1
		}
		i++
	}
	for c := 1; c < col; c++ {
		if i >= len(src) || src[i] == '\n' {
			return -1
		}
		_, size := utf8.DecodeRune(src[i:])
		i += size
	}
	return i
}

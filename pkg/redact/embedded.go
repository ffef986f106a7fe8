package redact

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
)

// JSON inside strings that are not themselves one JSON document: code
// (`x = '{"db": {"password": "..."}}'`), a JSON string literal in code
// (`json.loads("{\"password\": \"...\"}")`), logs with a JSON payload. The
// walkers of RedactJSON and RedactValue hand such strings to
// redactEmbedded, which finds the objects and arrays in them, redacts each
// structurally one level deeper (so that a sensitive key's nested values
// and numbers go too, and strings inside them are searched again), and
// splices the results back, re-encoded as a string literal where they came
// from one. The plain-text rules then scan the rewritten string as well;
// they also catch key/value pairs whose quotes are escaped any number of
// times, so a document that does not parse, or lies deeper than
// maxEmbeddedDepth, or beyond the budget below, is still covered.

// Bounds on the search for embedded JSON, per RedactJSON or RedactValue
// call: bytes examined by candidate scans, and documents redacted. When
// either runs out, the remaining strings are left to the plain-text rules.
const (
	embedScanBudget = 16 << 20
	embedDocBudget  = 512
)

// embedBudget is the remaining work for embedded JSON in one call.
type embedBudget struct{ bytes, docs int }

func newEmbedBudget() *embedBudget {
	return &embedBudget{bytes: embedScanBudget, docs: embedDocBudget}
}

func (b *embedBudget) spent() bool { return b.bytes <= 0 || b.docs <= 0 }

// rewrite records that s[from:to] of a string became out[newFrom:newTo].
type rewrite struct{ from, to, newFrom, newTo int }

// mayHoldJSON is the cheap test for strings worth searching.
func mayHoldJSON(s string) bool {
	return strings.IndexByte(s, '{') >= 0 || strings.IndexByte(s, '[') >= 0
}

// redactEmbedded redacts the JSON objects and arrays inside s, a string at
// embedding depth depth, whether they appear as they are or as the content
// of a JSON string literal. It returns the rewritten string, the findings
// (Path relative to s's own path, continuing into the embedded document)
// and the rewritten regions; rws is nil when nothing changed.
func (r *Redactor) redactEmbedded(ctx context.Context, s string, depth int, budget *embedBudget) (out string, findings []Finding, rws []rewrite, err error) {
	if depth >= maxEmbeddedDepth {
		return s, nil, nil, nil
	}
	var b strings.Builder
	prev := 0
	for i := 0; i < len(s) && !budget.spent(); {
		k := strings.IndexAny(s[i:], `{["`)
		if k < 0 {
			break
		}
		p := i + k
		var end int
		var replacement string
		var fs []Finding
		if s[p] == '"' {
			e, ok := stringLiteralEnd(s, p)
			budget.bytes -= e - p
			if !ok {
				i = p + 1
				continue
			}
			end = e
			lit := s[p:end]
			if !mayHoldJSON(lit) {
				i = end
				continue
			}
			var decoded string
			budget.bytes -= len(lit)
			if json.Unmarshal([]byte(lit), &decoded) != nil {
				i = p + 1 // not a JSON literal ('\'' escapes): read on inside it
				continue
			}
			red, rfs, err := r.redactEmbeddedString(ctx, decoded, depth+1, budget)
			if err != nil {
				return "", nil, nil, err
			}
			if len(rfs) == 0 {
				i = end
				continue
			}
			replacement, fs = string(encodeJSONString(red)), rfs
		} else {
			e, ok := jsonValueExtent(s, p)
			budget.bytes -= e - p
			if !ok || strings.IndexByte(s[p:e], '"') < 0 { // no string, no secret
				i = p + 1
				if ok {
					i = e
				}
				continue
			}
			end = e
			doc := []byte(s[p:end])
			budget.bytes -= len(doc)
			if !json.Valid(doc) {
				i = p + 1
				continue
			}
			budget.docs--
			red, rfs, err := r.redactJSONDoc(ctx, doc, depth+1, budget)
			if err != nil {
				return "", nil, nil, err
			}
			if len(rfs) == 0 {
				i = end
				continue
			}
			replacement, fs = string(red), rfs
		}
		b.WriteString(s[prev:p])
		newFrom := b.Len()
		b.WriteString(replacement)
		rws = append(rws, rewrite{from: p, to: end, newFrom: newFrom, newTo: b.Len()})
		findings = append(findings, fs...)
		prev, i = end, end
	}
	if rws == nil {
		return s, nil, nil, ctx.Err()
	}
	b.WriteString(s[prev:])
	return b.String(), findings, rws, ctx.Err()
}

// redactEmbeddedString redacts the decoded content of a string literal
// found inside another string: structurally if it is one JSON document,
// else by searching it for embedded documents in turn. Its findings are
// those of the structural redaction only; the literal is rewritten only
// when there are some.
func (r *Redactor) redactEmbeddedString(ctx context.Context, s string, depth int, budget *embedBudget) (string, []Finding, error) {
	if depth > maxEmbeddedDepth {
		return s, nil, nil
	}
	if doc := []byte(s); looksLikeJSONContainer(doc) && json.Valid(doc) {
		budget.bytes -= len(doc)
		budget.docs--
		out, fs, err := r.redactJSONDoc(ctx, doc, depth, budget)
		return string(out), fs, err
	}
	if !mayHoldJSON(s) {
		return s, nil, nil
	}
	out, fs, _, err := r.redactEmbedded(ctx, s, depth, budget)
	return out, fs, err
}

// stringLiteralEnd returns the index after the JSON string literal that
// opens at s[open], or false if a control character (a line break) or the
// end of s comes first.
func stringLiteralEnd(s string, open int) (int, bool) {
	for i := open + 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		}
	}
	return len(s), false
}

// jsonValueExtent returns the end of the object or array that starts at
// s[start], found by matching brackets outside strings. It gives up (false)
// at the first byte that cannot occur in JSON outside a string, at a
// control character inside one, or at the end of s; the span it returns
// must still be validated. On failure the index returned is where it
// stopped.
func jsonValueExtent(s string, start int) (int, bool) {
	depth := 0
	for i := start; i < len(s); i++ {
		switch c := s[i]; c {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				} else if s[i] < 0x20 {
					return i, false
				}
			}
			if i >= len(s) {
				return len(s), false
			}
		case ' ', '\t', '\r', '\n', ':', ',', '-', '+', '.', 'e', 'E', 't', 'r', 'u', 'f', 'a', 'l', 's', 'n':
		default:
			if !isDigit(c) {
				return i, false
			}
		}
	}
	return len(s), false
}

// originalOffsets maps findings on a rewritten string back onto the
// original: offsets outside the rewritten regions shift, and an offset
// inside one moves to the region's start (for Start) or end (for End). It
// changes fs in place.
func originalOffsets(fs []Finding, rws []rewrite) []Finding {
	if len(rws) == 0 {
		return fs
	}
	for i := range fs {
		fs[i].Start = originalOffset(fs[i].Start, rws, false)
		fs[i].End = originalOffset(fs[i].End, rws, true)
	}
	return fs
}

func originalOffset(p int, rws []rewrite, isEnd bool) int {
	j := sort.Search(len(rws), func(i int) bool { return rws[i].newFrom >= p }) // regions before j start before p
	if j == 0 {
		return p
	}
	rw := rws[j-1]
	if p < rw.newTo {
		if isEnd {
			return rw.to
		}
		return rw.from
	}
	return rw.to + p - rw.newTo
}

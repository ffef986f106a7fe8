package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// maxEmbeddedDepth limits how many levels of JSON-inside-a-JSON-string are
// redacted structurally; deeper strings are scanned as plain text.
const maxEmbeddedDepth = 8

// RedactJSON redacts a JSON document: every string value and object key is
// scanned, the values of sensitive keys are replaced (strings and numbers),
// and string values that themselves hold a JSON object or array are redacted
// structurally and re-encoded as strings. Only changed tokens are rewritten,
// so numbers, key order and formatting elsewhere are preserved exactly; if
// nothing is found the returned slice is raw itself. Findings are in
// document order; their offsets refer to the decoded string at
// Finding.Path.
//
// On error the returned bytes are nil: ErrInvalidJSON for input that is
// not one JSON value, and ErrTimeout, ErrInputTooLarge or ErrScanFailed
// when the output must be withheld.
func (r *Redactor) RedactJSON(ctx context.Context, raw []byte) ([]byte, []Finding, error) {
	if len(raw) > r.maxInput {
		return nil, nil, fmt.Errorf("%w (%d bytes, limit %d)", ErrInputTooLarge, len(raw), r.maxInput)
	}
	var out []byte
	var findings []Finding
	err := r.bounded(ctx, func(ctx context.Context) error {
		if !json.Valid(raw) {
			return ErrInvalidJSON
		}
		var err error
		out, findings, err = r.redactJSONDoc(ctx, raw, 0, newEmbedBudget())
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return out, findings, nil
}

// span is a byte range of a token in the raw document.
type span struct{ start, end int }

// pathNode is one step of a JSON Pointer, built lazily: paths are only
// rendered for findings.
type pathNode struct {
	parent int  // index of the parent node, -1 at the root
	key    span // member name token; key.start < 0 for an array element
	index  int
}

// jsonItem is an object member or array element whose tokens may need
// rewriting.
type jsonItem struct {
	node   int  // path node, -1 for the root value
	keyTok span // the member name token; start < 0 for array elements
	valTok span // the scalar value token; start < 0 for containers
	seg    int  // batch segment, or -1
}

// jsonWalker walks a JSON document that json.Valid accepted.
type jsonWalker struct {
	r        *Redactor
	ctx      context.Context
	raw      []byte
	pos      int
	depth    int // embedding depth of this document
	b        batch
	nodes    []pathNode
	items    []jsonItem
	replaced map[int][]byte    // item index -> new value token (sensitive value or embedded JSON)
	found    map[int][]Finding // item index -> findings of the sensitive value or embedded document
	// rewrites holds, for strings whose embedded JSON was redacted, the
	// regions rewritten: their batch value is the rewritten string, and
	// findings on it are mapped back (item index -> regions).
	rewrites map[int][]rewrite
	budget   *embedBudget
	scratch  []byte
	err      error
}

// walkerPool recycles walkers: their slices are the bulk of the
// allocations of a RedactJSON call. Nothing returned to callers aliases them.
var walkerPool = sync.Pool{New: func() any { return new(jsonWalker) }}

// maxPooledBytes keeps walkers that grew beyond the default input limit out
// of the pool.
const maxPooledBytes = DefaultMaxInput

// newJSONWalker returns a walker for raw, reusing pooled buffers, sized from
// cheap counts of the document's tokens so that they rarely regrow.
func newJSONWalker(r *Redactor, ctx context.Context, raw []byte, depth int, budget *embedBudget) *jsonWalker {
	w := walkerPool.Get().(*jsonWalker)
	members := bytes.Count(raw, []byte{':'})
	strs := bytes.Count(raw, []byte{'"'}) / 2
	values := members + bytes.Count(raw, []byte{','}) + 1
	*w = jsonWalker{
		r: r, ctx: ctx, raw: raw, depth: depth, budget: budget,
		b:       batch{text: grow(w.b.text[:0], len(raw)), segs: grow(w.b.segs[:0], strs+members)},
		nodes:   grow(w.nodes[:0], values),
		items:   grow(w.items[:0], strs+members),
		scratch: w.scratch[:0],
	}
	return w
}

// grow returns s with room for at least n elements.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s
	}
	return make([]T, 0, n)
}

// release returns w's buffers to the pool.
func (w *jsonWalker) release() {
	if cap(w.b.text) > maxPooledBytes {
		return
	}
	*w = jsonWalker{b: batch{text: w.b.text, segs: w.b.segs}, nodes: w.nodes, items: w.items, scratch: w.scratch}
	walkerPool.Put(w)
}

// redactJSONDoc does the work of RedactJSON on a document already known to
// be valid, at the given embedding depth, drawing on budget for JSON
// embedded in its strings.
func (r *Redactor) redactJSONDoc(ctx context.Context, raw []byte, depth int, budget *embedBudget) ([]byte, []Finding, error) {
	w := newJSONWalker(r, ctx, raw, depth, budget)
	defer w.release()
	w.value(-1, span{-1, -1}, nil, "")
	if w.err != nil {
		return nil, nil, w.err
	}
	results, err := r.scanBatch(ctx, &w.b)
	if err != nil {
		return nil, nil, err
	}
	type edit struct {
		tok  span
		data []byte
	}
	var edits []edit
	var findings []Finding         // in document order
	renamed := map[string]string{} // paths whose member name was redacted
	for i, it := range w.items {
		var res segmentFindings
		if it.seg >= 0 && results != nil {
			res = results[it.seg]
		}
		if len(res.name) > 0 && it.keyTok.start >= 0 {
			newName := applyFindings(w.b.nameOf(it.seg), res.name)
			edits = append(edits, edit{it.keyTok, encodeJSONString(newName)})
			path := w.pathOf(it.node)
			findings = appendWithPath(findings, res.name, path, true)
			renamed[path] = path[:strings.LastIndexByte(path, '/')+1] + escapePointer(newName)
		}
		findings = append(findings, w.found[i]...)
		if len(res.value) > 0 && it.valTok.start >= 0 {
			// The batch value already holds any rewrite of embedded JSON.
			edits = append(edits, edit{it.valTok, encodeJSONString(applyFindings(w.b.valueOf(it.seg), res.value))})
			findings = appendWithPath(findings, originalOffsets(res.value, w.rewrites[i]), w.pathOf(it.node), false)
		} else if data, ok := w.replaced[i]; ok {
			edits = append(edits, edit{it.valTok, data})
		}
	}
	sanitizePaths(findings, renamed)
	if len(edits) == 0 {
		return raw, findings, nil
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].tok.start < edits[j].tok.start })
	out := make([]byte, 0, len(raw)+32*len(edits))
	prev := 0
	for _, e := range edits {
		out = append(out, raw[prev:e.tok.start]...)
		out = append(out, e.data...)
		prev = e.tok.end
	}
	out = append(out, raw[prev:]...)
	return out, findings, nil
}

// pathOf renders the JSON Pointer of a path node.
func (w *jsonWalker) pathOf(node int) string {
	var steps []string
	for ; node >= 0; node = w.nodes[node].parent {
		n := w.nodes[node]
		if n.key.start >= 0 {
			steps = append(steps, escapePointer(string(w.appendDecoded(nil, n.key))))
		} else {
			steps = append(steps, strconv.Itoa(n.index))
		}
	}
	var b strings.Builder
	for i := len(steps) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(steps[i])
	}
	return b.String()
}

// sanitizePaths rewrites finding paths that run through a member name that
// was itself redacted, so that a Path never carries a secret.
func sanitizePaths(findings []Finding, renamed map[string]string) {
	if len(renamed) == 0 {
		return
	}
	olds := make([]string, 0, len(renamed))
	for old := range renamed {
		olds = append(olds, old)
	}
	sort.Slice(olds, func(i, j int) bool { return len(olds[i]) > len(olds[j]) }) // innermost first
	for i := range findings {
		for _, old := range olds {
			p := findings[i].Path
			if p == old || strings.HasPrefix(p, old+"/") {
				findings[i].Path = renamed[old] + p[len(old):]
			}
		}
	}
}

// appendWithPath appends fs to out with Path and Key set.
func appendWithPath(out, fs []Finding, path string, key bool) []Finding {
	for _, f := range fs {
		f.Path, f.Key = path, key
		out = append(out, f)
	}
	return out
}

func (w *jsonWalker) skipSpace() {
	for w.pos < len(w.raw) {
		switch w.raw[w.pos] {
		case ' ', '\t', '\r', '\n':
			w.pos++
		default:
			return
		}
	}
}

// value walks the value at w.pos. node is its path node; keyTok is the
// member name token (start < 0 for array elements and the root); name is
// the decoded member name, or for array elements the enclosing member's
// name; sensitive is the rule ID when an enclosing key marks every scalar
// below it as secret.
func (w *jsonWalker) value(node int, keyTok span, name []byte, sensitive string) {
	if w.err != nil {
		return
	}
	w.skipSpace()
	isMember := keyTok.start >= 0
	switch c := w.raw[w.pos]; c {
	case '{', '[':
		if isMember {
			w.addNameOnly(node, keyTok, name)
		}
		if sensitive == ruleSecretAssignment {
			sensitive = "" // the key-name rule replaces scalars only
		}
		if c == '{' {
			w.object(node, sensitive)
		} else {
			w.array(node, name, sensitive)
		}
	case '"':
		w.stringValue(node, keyTok, name, sensitive)
	default: // number, true, false, null
		start := w.pos
		for w.pos < len(w.raw) && strings.IndexByte(",]} \t\r\n", w.raw[w.pos]) < 0 {
			w.pos++
		}
		tok := span{start, w.pos}
		isNumber := c == '-' || isDigit(c)
		if sensitive == "" && isNumber && w.r.phi {
			sensitive = phiNumberRule(name, w.raw[tok.start:tok.end])
		}
		if sensitive != "" && isNumber {
			w.items = append(w.items, jsonItem{node: node, keyTok: keyTok, valTok: tok, seg: w.nameSegment(name, isMember)})
			w.replace(encodeJSONString(marker(sensitive)), Finding{RuleID: sensitive, Start: 0, End: tok.end - tok.start, Path: w.pathOf(node)})
		} else if isMember {
			w.addNameOnly(node, keyTok, name)
		}
	}
}

// nameSegment adds a segment holding only a member name, or returns -1 when
// there is no member name to scan.
func (w *jsonWalker) nameSegment(name []byte, isMember bool) int {
	if !isMember {
		return -1
	}
	seg := w.b.beginSegment(name, true)
	w.b.endSegment()
	return seg
}

func (w *jsonWalker) addNameOnly(node int, keyTok span, name []byte) {
	w.items = append(w.items, jsonItem{node: node, keyTok: keyTok, valTok: span{-1, -1}, seg: w.nameSegment(name, true)})
}

func (w *jsonWalker) object(node int, sensitive string) {
	w.pos++ // '{'
	for w.err == nil {
		w.skipSpace()
		if w.raw[w.pos] == '}' {
			w.pos++
			return
		}
		if w.raw[w.pos] == ',' {
			w.pos++
			continue
		}
		keyTok := w.stringToken()
		name := w.decodedName(keyTok)
		w.skipSpace()
		w.pos++ // ':'
		childSensitive := sensitive
		if childSensitive == "" {
			childSensitive = keyRule(name)
		}
		w.nodes = append(w.nodes, pathNode{parent: node, key: keyTok})
		w.value(len(w.nodes)-1, keyTok, name, childSensitive)
	}
}

func (w *jsonWalker) array(node int, name []byte, sensitive string) {
	w.pos++ // '['
	for i := 0; w.err == nil; {
		w.skipSpace()
		switch w.raw[w.pos] {
		case ']':
			w.pos++
			return
		case ',':
			w.pos++
			continue
		}
		w.nodes = append(w.nodes, pathNode{parent: node, key: span{-1, -1}, index: i})
		w.value(len(w.nodes)-1, span{-1, -1}, name, sensitive)
		i++
	}
}

// stringToken returns the span of the string token at w.pos (quotes
// included) and moves past it.
func (w *jsonWalker) stringToken() span {
	start := w.pos
	i := start + 1
	for i < len(w.raw) {
		switch w.raw[i] {
		case '\\':
			i += 2
			continue
		case '"':
			w.pos = i + 1
			return span{start, i + 1}
		}
		i++
	}
	w.pos = len(w.raw)
	w.err = fmt.Errorf("%w: unterminated string at offset %d", ErrInvalidJSON, start)
	return span{start, len(w.raw)}
}

// appendDecoded appends the decoded content of a string token to dst.
func (w *jsonWalker) appendDecoded(dst []byte, tok span) []byte {
	body := w.raw[tok.start+1 : tok.end-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return append(dst, body...)
	}
	var s string
	if err := json.Unmarshal(w.raw[tok.start:tok.end], &s); err != nil {
		w.err = fmt.Errorf("%w: %v", ErrInvalidJSON, err)
		return dst
	}
	return append(dst, s...)
}

// decodedName returns the decoded member name of a key token, aliasing the
// document when the name has no escapes.
func (w *jsonWalker) decodedName(tok span) []byte {
	body := w.raw[tok.start+1 : tok.end-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body
	}
	return w.appendDecoded(nil, tok)
}

// stringValue handles a string value: replaced wholesale under a sensitive
// key, redacted structurally when it holds JSON, otherwise batched for
// scanning together with its member name.
func (w *jsonWalker) stringValue(node int, keyTok span, name []byte, sensitive string) {
	tok := w.stringToken()
	if w.err != nil {
		return
	}
	isMember := keyTok.start >= 0
	item := jsonItem{node: node, keyTok: keyTok, valTok: tok, seg: -1}
	if sensitive != "" {
		w.scratch = w.appendDecoded(w.scratch[:0], tok)
		if decodedLen := len(w.scratch); decodedLen > 0 {
			item.seg = w.nameSegment(name, isMember)
			w.items = append(w.items, item)
			w.replace(encodeJSONString(marker(sensitive)), Finding{RuleID: sensitive, Start: 0, End: decodedLen, Path: w.pathOf(node)})
			return
		}
	}
	item.seg = w.b.beginSegment(name, isMember)
	var replacement []byte
	var embeddedFindings []Finding
	w.b.startValue()
	valStart := len(w.b.text)
	w.b.text = w.appendDecoded(w.b.text, tok)
	if embedded := w.b.text[valStart:]; w.depth < maxEmbeddedDepth && looksLikeJSONContainer(embedded) && json.Valid(embedded) {
		doc := bytes.Clone(embedded)
		w.b.dropValue()
		out, fs, err := w.r.redactJSONDoc(w.ctx, doc, w.depth+1, w.budget)
		if err != nil {
			w.err = err
			return
		}
		if len(fs) > 0 {
			replacement = encodeJSONString(string(out))
			path := w.pathOf(node)
			for _, f := range fs {
				f.Path = path + f.Path
				embeddedFindings = append(embeddedFindings, f)
			}
		}
	} else if w.depth < maxEmbeddedDepth && (bytes.IndexByte(embedded, '{') >= 0 || bytes.IndexByte(embedded, '[') >= 0) && !w.budget.spent() {
		// JSON inside a longer string: redact it in place, and let the
		// batch scan the rewritten string.
		text := string(embedded)
		out, fs, rws, err := w.r.redactEmbedded(w.ctx, text, w.depth, w.budget)
		if err != nil {
			w.err = err
			return
		}
		if rws != nil {
			w.b.text = append(w.b.text[:valStart], out...)
			replacement = encodeJSONString(out)
			if w.rewrites == nil {
				w.rewrites = map[int][]rewrite{}
			}
			w.rewrites[len(w.items)] = rws // the item appended below
			path := w.pathOf(node)
			for _, f := range fs {
				f.Path = path + f.Path
				embeddedFindings = append(embeddedFindings, f)
			}
		}
	}
	w.b.endSegment()
	w.items = append(w.items, item)
	if replacement != nil {
		w.replace(replacement, embeddedFindings...)
	}
}

// replace records a new value token for the item added last, and the
// findings it stands for.
func (w *jsonWalker) replace(token []byte, findings ...Finding) {
	if w.replaced == nil {
		w.replaced, w.found = map[int][]byte{}, map[int][]Finding{}
	}
	w.replaced[len(w.items)-1] = token
	w.found[len(w.items)-1] = findings
}

// looksLikeJSONContainer reports whether s starts (after blanks) with '{' or
// '['.
func looksLikeJSONContainer(s []byte) bool {
	s = bytes.TrimLeft(s, " \t\r\n")
	return len(s) > 0 && (s[0] == '{' || s[0] == '[')
}

// escapePointer escapes a member name for a JSON Pointer (RFC 6901).
func escapePointer(name string) string {
	if !strings.ContainsAny(name, "~/") {
		return name
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
}

// encodeJSONString returns s as a JSON string token (without HTML escaping,
// so markers and text stay readable).
func encodeJSONString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// RedactValue redacts an already-decoded value such as tool-call parameters
// bound for the audit log. map[string]any, []any, string, json.Number, bool,
// nil and Go numbers are walked directly and copied (v itself is never
// modified); the rules are those of RedactJSON, and a sensitive key's string
// or number value becomes the marker string. Any other type is round-tripped
// through encoding/json (numbers decoded as json.Number) if, and only if,
// something in it is redacted. On error the returned value is nil.
func (r *Redactor) RedactValue(ctx context.Context, v any) (any, []Finding, error) {
	var out any
	var findings []Finding
	err := r.bounded(ctx, func(ctx context.Context) error {
		w := &valueWalker{r: r, ctx: ctx, budget: newEmbedBudget()}
		out = w.walk(v, "", "", false, "", func(x any) { out = x })
		if w.err != nil {
			return w.err
		}
		var err error
		findings, err = w.finish()
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].Path < findings[j].Path })
	return out, findings, nil
}

// valueItem is a map member or slice element whose key or value may change.
type valueItem struct {
	path     string
	seg      int
	setVal   func(any)    // nil when the value is not a scanned string
	rename   func(string) // nil for slice elements
	rewrites []rewrite    // regions of the string rewritten for embedded JSON
}

type valueWalker struct {
	r        *Redactor
	ctx      context.Context
	b        batch
	items    []valueItem
	findings []Finding
	budget   *embedBudget
	err      error
}

// walk returns a copy of v with sensitive scalars replaced, registering
// strings for scanning. name is the member name (isMember) or the enclosing
// member's name; set stores a later replacement of this value.
func (w *valueWalker) walk(v any, path, name string, isMember bool, sensitive string, set func(any)) any {
	if w.err != nil {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		w.nameOnly(path, name, isMember)
		m := make(map[string]any, len(x))
		if sensitive == ruleSecretAssignment {
			sensitive = "" // the key-name rule replaces scalars only
		}
		for k, child := range x {
			childSensitive := sensitive
			if childSensitive == "" {
				childSensitive = keyRule(k)
			}
			first := len(w.items) // the member's own item is added first
			m[k] = w.walk(child, path+"/"+escapePointer(k), k, true, childSensitive, func(y any) { m[k] = y })
			if w.err == nil && first < len(w.items) {
				w.items[first].rename = func(newKey string) {
					val := m[k]
					delete(m, k)
					m[newKey] = val
				}
			}
		}
		return m
	case []any:
		w.nameOnly(path, name, isMember)
		if sensitive == ruleSecretAssignment {
			sensitive = ""
		}
		s := make([]any, len(x))
		for i, child := range x {
			s[i] = w.walk(child, path+"/"+strconv.Itoa(i), name, false, sensitive, func(y any) { s[i] = y })
		}
		return s
	case string:
		if sensitive != "" && x != "" {
			w.nameOnly(path, name, isMember)
			w.findings = append(w.findings, Finding{RuleID: sensitive, End: len(x), Path: path})
			return marker(sensitive)
		}
		return w.stringLeaf(x, path, name, isMember, set)
	case nil, bool:
		w.nameOnly(path, name, isMember)
		return x
	case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		w.nameOnly(path, name, isMember)
		if sensitive == "" && w.r.phi {
			sensitive = phiNumberRule(name, fmt.Sprint(x))
		}
		if sensitive != "" {
			w.findings = append(w.findings, Finding{RuleID: sensitive, End: len(fmt.Sprint(x)), Path: path})
			return marker(sensitive)
		}
		return x
	default:
		w.nameOnly(path, name, isMember)
		return w.viaJSON(v, path, sensitive)
	}
}

// nameOnly registers a member name for scanning.
func (w *valueWalker) nameOnly(path, name string, isMember bool) {
	if !isMember {
		return
	}
	seg := w.b.beginSegment([]byte(name), true)
	w.b.endSegment()
	w.items = append(w.items, valueItem{path: path, seg: seg})
}

// stringLeaf registers a string for scanning (a later set replaces it), or
// redacts it structurally if it is a JSON object or array. JSON inside a
// longer string is redacted in place first (redactEmbedded), and the
// rewritten string is what gets scanned. It returns the value to store now.
func (w *valueWalker) stringLeaf(s, path, name string, isMember bool, set func(any)) any {
	seg := w.b.beginSegment([]byte(name), isMember)
	item := valueItem{path: path, seg: seg}
	value := s
	if doc := []byte(s); looksLikeJSONContainer(doc) && json.Valid(doc) {
		out, fs, err := w.r.redactJSONDoc(w.ctx, doc, 1, w.budget)
		if err != nil {
			w.err = err
			return nil
		}
		if len(fs) > 0 {
			value = string(out)
			for _, f := range fs {
				f.Path = path + f.Path
				w.findings = append(w.findings, f)
			}
		}
	} else {
		if mayHoldJSON(s) && !w.budget.spent() {
			out, fs, rws, err := w.r.redactEmbedded(w.ctx, s, 0, w.budget)
			if err != nil {
				w.err = err
				return nil
			}
			if rws != nil {
				value, item.rewrites = out, rws
				for _, f := range fs {
					f.Path = path + f.Path
					w.findings = append(w.findings, f)
				}
			}
		}
		w.b.startValue()
		w.b.text = append(w.b.text, value...)
		item.setVal = set
	}
	w.b.endSegment()
	w.items = append(w.items, item)
	return value
}

// viaJSON redacts a value of a type the walker does not know by encoding it
// as JSON. It returns v unchanged when nothing is found.
func (w *valueWalker) viaJSON(v any, path, sensitive string) any {
	raw, err := json.Marshal(v)
	if err != nil {
		w.err = fmt.Errorf("%w: cannot inspect value of type %T: %v", ErrScanFailed, v, err)
		return nil
	}
	if sensitive != "" && string(raw) != "null" && string(raw) != `""` &&
		(sensitive != ruleSecretAssignment || raw[0] != '{' && raw[0] != '[') {
		w.findings = append(w.findings, Finding{RuleID: sensitive, End: len(raw), Path: path})
		return marker(sensitive)
	}
	out, fs, err := w.r.redactJSONDoc(w.ctx, raw, 0, w.budget)
	if err != nil {
		w.err = err
		return nil
	}
	if len(fs) == 0 {
		return v
	}
	for _, f := range fs {
		f.Path = path + f.Path
		w.findings = append(w.findings, f)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var decoded any
	if err := dec.Decode(&decoded); err != nil {
		w.err = fmt.Errorf("%w: re-decoding redacted %T: %v", ErrScanFailed, v, err)
		return nil
	}
	return decoded
}

// finish scans the batch and applies the results: values first, then key
// renames (a rename moves the already-updated value).
func (w *valueWalker) finish() ([]Finding, error) {
	results, err := w.r.scanBatch(w.ctx, &w.b)
	if err != nil {
		return nil, err
	}
	findings := w.findings
	if results == nil {
		return findings, nil
	}
	var renames []func()
	renamed := map[string]string{}
	for _, it := range w.items {
		res := results[it.seg]
		if len(res.value) > 0 && it.setVal != nil {
			it.setVal(applyFindings(w.b.valueOf(it.seg), res.value))
			findings = appendWithPath(findings, originalOffsets(res.value, it.rewrites), it.path, false)
		}
		if len(res.name) > 0 && it.rename != nil {
			newKey := applyFindings(w.b.nameOf(it.seg), res.name)
			rename := it.rename
			renames = append(renames, func() { rename(newKey) })
			findings = appendWithPath(findings, res.name, it.path, true)
			renamed[it.path] = it.path[:strings.LastIndexByte(it.path, '/')+1] + escapePointer(newKey)
		}
	}
	sanitizePaths(findings, renamed)
	for _, rename := range renames {
		rename()
	}
	return findings, nil
}

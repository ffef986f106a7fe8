package redact

import (
	"context"
	"sort"
)

// batch gathers the strings of a structured document (object keys and
// string values) into one text so that gitleaks, which has a high fixed cost
// per call, runs once per document instead of once per string.
//
// Each segment is one line, "<name>: <value>\n". The name gives gitleaks'
// context-dependent rules ("heroku_key: ...") the context they need. It is
// either the member's own key (mapped: findings in it redact the key) or,
// for array elements, the enclosing member's key (context only).
type batch struct {
	text []byte
	segs []segment
}

type segment struct {
	start, end       int // the whole line, without its '\n'
	nameStart, name  int // name region [nameStart, nameStart+name)
	valStart, valEnd int // value region; valStart < 0 when there is no value
	nameMapped       bool
	cursor           bool // the name is a pagination cursor key (see isCursorKey)
}

// segmentFindings are the merged findings of one segment, relative to the
// start of its name and of its value.
type segmentFindings struct {
	name, value []Finding
}

// beginSegment starts a segment with the given name and returns its index.
func (b *batch) beginSegment(name []byte, mapped bool) int {
	start := len(b.text)
	b.text = append(b.text, name...)
	b.segs = append(b.segs, segment{start: start, nameStart: start, name: len(name), valStart: -1, nameMapped: mapped, cursor: mapped && isCursorKey(name)})
	return len(b.segs) - 1
}

// startValue marks the beginning of the current segment's value; the caller
// then appends the value bytes to b.text.
func (b *batch) startValue() {
	seg := &b.segs[len(b.segs)-1]
	if seg.name > 0 {
		b.text = append(b.text, ": "...)
	}
	seg.valStart = len(b.text)
}

// dropValue removes the value written since startValue.
func (b *batch) dropValue() {
	seg := &b.segs[len(b.segs)-1]
	b.text = b.text[:seg.nameStart+seg.name]
	seg.valStart = -1
}

// endSegment finishes the current segment.
func (b *batch) endSegment() {
	seg := &b.segs[len(b.segs)-1]
	seg.end = len(b.text)
	if seg.valStart >= 0 {
		seg.valEnd = seg.end
	}
	b.text = append(b.text, '\n')
}

// nameOf and valueOf return the text of a segment's regions.
func (b *batch) nameOf(i int) string {
	s := b.segs[i]
	return string(b.text[s.nameStart : s.nameStart+s.name])
}

func (b *batch) valueOf(i int) string {
	s := b.segs[i]
	return string(b.text[s.valStart:s.valEnd])
}

// scanBatch runs all detectors over the batch and returns each segment's
// findings. The package's own rules run once over the whole batch, and each
// of their findings is clipped to the segment it starts in; that equals
// running them per segment, since none of them looks back across a line
// break, and it keeps a key block without an END line from running past its
// own string. gitleaks then runs once over the batch with the own findings
// masked.
func (r *Redactor) scanBatch(ctx context.Context, b *batch) ([]segmentFindings, error) {
	if len(b.segs) == 0 {
		return nil, nil
	}
	text := string(b.text)
	all, late := findOwn(text, r.pii, r.known.find(text, nil))
	if r.phi {
		all = findPHI(text, all)
	}
	b.clipToSegments(all)
	b.clipToSegments(late)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.gitleaks {
		scanner, err := loadGitleaks()
		if err != nil {
			return nil, err
		}
		leaks, err := scanner.scan(ctx, maskFindings(text, all))
		if err != nil {
			return nil, err
		}
		all = append(all, leaks...)
	}
	all = addUncovered(all, late)
	if len(all) == 0 {
		return nil, nil
	}
	out := make([]segmentFindings, len(b.segs))
	for _, f := range all {
		for i := b.segmentAt(f.Start); i < len(b.segs) && b.segs[i].start < f.End; i++ {
			seg := b.segs[i]
			if seg.nameMapped {
				if g, ok := clip(f, seg.nameStart, seg.nameStart+seg.name); ok {
					out[i].name = append(out[i].name, g)
				}
			}
			if seg.valStart >= 0 && !(seg.cursor && f.RuleID == genericAPIKeyRule) {
				if g, ok := clip(f, seg.valStart, seg.valEnd); ok {
					out[i].value = append(out[i].value, g)
				}
			}
		}
	}
	for i := range out {
		out[i].name = mergeFindings(out[i].name)
		out[i].value = mergeFindings(out[i].value)
	}
	return out, nil
}

// clipToSegments cuts each finding at the end of the segment it starts in.
func (b *batch) clipToSegments(fs []Finding) {
	for k := range fs {
		if i := b.segmentAt(fs[k].Start); i < len(b.segs) && b.segs[i].start <= fs[k].Start {
			fs[k].End = min(fs[k].End, b.segs[i].end)
		} else {
			fs[k].End = fs[k].Start // starts on a line break: empty when scanned per segment
		}
	}
}

// segmentAt returns the index of the first segment whose line ends after
// offset (the segment containing offset, or the next one when offset is a
// line break).
func (b *batch) segmentAt(offset int) int {
	return sort.Search(len(b.segs), func(i int) bool { return b.segs[i].end > offset })
}

// clip returns the part of f inside [lo, hi), relative to lo.
func clip(f Finding, lo, hi int) (Finding, bool) {
	s, e := max(f.Start, lo), min(f.End, hi)
	if s >= e {
		return Finding{}, false
	}
	f.Start, f.End = s-lo, e-lo
	return f, true
}

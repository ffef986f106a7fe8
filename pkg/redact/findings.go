package redact

import (
	"sort"
	"strings"
)

// marker is the replacement text for a span found by rule.
func marker(rule string) string { return "[REDACTED:" + rule + "]" }

// mergeFindings sorts findings and merges overlapping spans so that every
// byte is replaced at most once. A merged span keeps the rule of the finding
// that starts first (the longer one on a tie). Empty spans are dropped.
// Touching but non-overlapping spans stay separate.
func mergeFindings(fs []Finding) []Finding {
	kept := fs[:0]
	for _, f := range fs {
		if f.End > f.Start {
			kept = append(kept, f)
		}
	}
	fs = kept
	if len(fs) < 2 {
		return fs
	}
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Start != fs[j].Start {
			return fs[i].Start < fs[j].Start
		}
		return fs[i].End > fs[j].End
	})
	out := fs[:1]
	for _, f := range fs[1:] {
		last := &out[len(out)-1]
		if f.Start < last.End {
			if f.End > last.End {
				last.End = f.End
			}
			continue
		}
		out = append(out, f)
	}
	return out
}

// applyFindings replaces each span of s (sorted, non-overlapping) with its
// marker.
func applyFindings(s string, fs []Finding) string {
	if len(fs) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16*len(fs))
	prev := 0
	for _, f := range fs {
		b.WriteString(s[prev:f.Start])
		b.WriteString(marker(f.RuleID))
		prev = f.End
	}
	b.WriteString(s[prev:])
	return b.String()
}

// maskFindings overwrites every found span with '*' so a later detector does
// not see (and pay for) what is already known. Offsets are unchanged.
func maskFindings(s string, fs []Finding) string {
	if len(fs) == 0 {
		return s
	}
	b := []byte(s)
	for _, f := range fs {
		for i := f.Start; i < f.End; i++ {
			b[i] = '*'
		}
	}
	return string(b)
}

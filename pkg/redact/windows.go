package redact

import (
	"math"
	"sort"
	"strings"
)

// Candidate windows for the gitleaks rules that are too slow to run over
// whole inputs.
//
// Each function below returns spans that contain every match the rule's
// regular expression can have in the full text, derived by hand from the
// regex in gitleaks v8.30.1's default config (quoted above each function).
// Running the rule on those windows instead of the whole text then yields
// the same secrets. Windows start early enough to include the context a
// leading \b or prefix needs and end at least two bytes after the longest
// run the secret can occupy, so a `$` or `\\[nr]` terminator cannot fire at
// a window edge where it would not in the full text. The only effect of
// windowing is that gitleaks' "line"-targeted allowlists see a shorter line,
// which can only suppress fewer findings (more redaction, never less).
// TestWindowedRulesMatchWholeText checks the equivalence on the test
// corpora.

// windowFunc returns candidate windows of text given every occurrence of the
// rule's keywords.
type windowFunc func(text string, hits []keywordHit) []span

// windowFuncs maps the windowed rule IDs to constructors of their window
// functions, given the rule's entropy threshold. A rule missing from the
// loaded config is simply left to the main detector.
var windowFuncs = map[string]func(entropy float64) windowFunc{
	genericAPIKeyRule:     genericAPIKeyWindows,
	"jwt":                 func(float64) windowFunc { return jwtWindows },
	"vault-service-token": func(float64) windowFunc { return vaultServiceTokenWindows },
}

// genericAPIKeyRule is the ID of gitleaks' catch-all rule.
const genericAPIKeyRule = "generic-api-key"

// genericAPIKeyWindows handles
//
//	(?i)[\w.-]{0,50}?(?:access|auth|(?-i:[Aa]pi|API)|credential|creds|key|passw(?:or)?d|secret|token)
//	(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"\s=]{0,5}
//	([\w.=-]{10,150}|[a-z0-9][a-z0-9+/]{11,}={0,3})(?:[\x60'"\s;]|\\[nr]|$)
//
// Every match contains one of the rule's keywords (the alternation, whose
// words are exactly its keywords); after it, within 23 bytes of
// [ \t\w.\-\s'"], a separator starting with one of "=>:|?,"; and within
// 10 bytes after the separator's first byte, a run of at least 10 bytes of
// [\w.=+/-] (the union of both value classes) that holds the secret.
//
// gitleaks drops a finding whose secret has Shannon entropy at or below the
// rule's threshold (3.5 bits). A string over d distinct bytes has entropy at
// most log2(d), so a candidate whose runs hold too few distinct bytes
// (at most 11 for 3.5) cannot produce a finding either; this removes dates,
// versions and counters such as "api_version": "2024-06-01".
//
// The window runs from 50 bytes before the keyword to 2 bytes past the end
// of every qualifying run.
func genericAPIKeyWindows(entropy float64) windowFunc {
	minDistinct := int(math.Floor(math.Exp2(entropy))) + 1
	return func(text string, hits []keywordHit) []span {
		var out []span
		for _, h := range hits {
			if end, ok := genericValueEnd(text, h.end, minDistinct); ok {
				out = append(out, span{h.start - 50, end + 2})
			}
		}
		return out
	}
}

// genericValueEnd returns the end of the furthest value run reachable from a
// separator after q, and whether the runs reachable from it are 10+ bytes
// long and hold at least minDistinct distinct bytes together.
func genericValueEnd(text string, q, minDistinct int) (int, bool) {
	end, long := 0, false
	var seen [256]bool
	distinct := 0
	for j := q; j < len(text) && j <= q+23; j++ {
		c := text[j]
		if strings.IndexByte("=>:|?,", c) >= 0 {
			for v := j + 1; v < len(text) && v <= j+10; v++ {
				if !isGenericValueChar(text[v]) {
					continue
				}
				e := v
				for e < len(text) && isGenericValueChar(text[e]) {
					e++
				}
				if e-v >= 10 {
					long = true
					end = max(end, e)
					for k := v; k < e && distinct < minDistinct; k++ {
						if !seen[text[k]] {
							seen[text[k]] = true
							distinct++
						}
					}
				}
				v = e
			}
		}
		if !(isKeyChar(c) || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\'' || c == '"') {
			break // the gap before the separator holds only these bytes
		}
	}
	return end, long && distinct >= minDistinct
}

func isGenericValueChar(c byte) bool {
	return isKeyChar(c) || c == '=' || c == '+' || c == '/'
}

// jwtWindows handles
//
//	\b(ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9\/\\_-]{17,}\.(?:[a-zA-Z0-9\/\\_-]{10,}={0,2})?)(?:[\x60'"\s;]|\\[nr]|$)
//
// A match starts with "ey" and 17+ letters or digits followed by '.', and
// lies within the following run of [a-zA-Z0-9/\\_.=-]. The window includes
// the byte before (for \b) and two bytes after the run.
func jwtWindows(text string, hits []keywordHit) []span {
	var out []span
	covered := 0
	for _, h := range hits {
		p := h.start
		if p < covered {
			continue
		}
		j := p + 2
		for j < len(text) && isAlnum(text[j]) {
			j++
		}
		if j-(p+2) < 17 || j >= len(text) || text[j] != '.' {
			continue
		}
		end := j
		for end < len(text) && (isTokenChar(text[end]) || strings.IndexByte(`/\.=`, text[end]) >= 0) {
			end++
		}
		out = append(out, span{p - 1, end + 2})
		covered = end
	}
	return out
}

// vaultServiceTokenWindows handles
//
//	\b((?:hvs\.[\w-]{90,120}|s\.(?i:[a-z0-9]{24})))(?:[\x60'"\s;]|\\[nr]|$)
//
// A match contains "s." followed by 24 letters or digits, or is "hvs."
// followed by 90+ bytes of [\w-]. The window includes the bytes before (for
// "hv" and \b) and two bytes after the [\w-] run.
func vaultServiceTokenWindows(text string, hits []keywordHit) []span {
	var out []span
	for _, h := range hits {
		p := h.end - 2 // the "s." of "s." and of "hvs."
		alnum := p + 2
		for alnum < len(text) && isAlnum(text[alnum]) {
			alnum++
		}
		run := alnum
		for run < len(text) && isTokenChar(text[run]) {
			run++
		}
		hvs := p >= 2 && text[p-2:p] == "hv" && run-(p+2) >= 90
		if alnum-(p+2) < 24 && !hvs {
			continue
		}
		out = append(out, span{p - 3, run + 2})
	}
	return out
}

// mergeSpans clips spans to [0, n], sorts them and merges those that overlap
// or lie within 64 bytes of each other (fewer, larger windows cost less
// than many calls).
func mergeSpans(spans []span, n int) []span {
	if len(spans) == 0 {
		return nil
	}
	for i := range spans {
		spans[i].start = max(0, spans[i].start)
		spans[i].end = min(n, spans[i].end)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end+64 {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// windowsOrWhole returns the merged windows, or the whole text as one span
// when the windows cover most of it anyway.
func windowsOrWhole(spans []span, n int) []span {
	spans = mergeSpans(spans, n)
	covered := 0
	for _, sp := range spans {
		covered += sp.end - sp.start
	}
	if covered > n/2 {
		return []span{{0, n}}
	}
	return spans
}

// asciiLower lower-cases ASCII letters only, so byte offsets are unchanged.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if isUpper(s[i]) {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if isUpper(b[j]) {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// hasCaseFoldSurprise reports whether s contains a non-ASCII rune that Go's
// case-insensitive matching folds to an ASCII letter (KELVIN SIGN to 'k',
// LATIN SMALL LETTER LONG S to 's'). The window functions search ASCII only,
// so such input is scanned whole instead.
func hasCaseFoldSurprise(s string) bool {
	return strings.Contains(s, "\u212a") || strings.Contains(s, "\u017f")
}

package redact

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// windowTexts returns texts for comparing windowed and whole-text runs:
// the corpora, edge cases at window boundaries, and each of those embedded
// in benign padding so the windows are much smaller than the text.
func windowTexts() []string {
	g := newFakeGen()
	jwt := g.jwt()
	long := g.pick(charsBase64, 400)
	edge := []string{
		"api_key=" + g.pick(charsAlnum, 32),                                     // keyword at text start
		"x = 1\nsecret_token: " + g.pick(charsAlnum, 20),                        // value ends at text end ($)
		strings.Repeat("a", 60) + "_key = " + g.pick(charsAlnum, 30),            // identifier longer than 50 bytes before keyword
		"auth" + strings.Repeat(" ", 22) + "= " + g.pick(charsAlnum, 16),        // gap at the 23-byte limit
		"auth" + strings.Repeat(" ", 24) + "= " + g.pick(charsAlnum, 16),        // gap past the limit
		"KEY:::=" + g.pick(charsAlnum, 12) + "\\n",                              // longest separator, escaped newline terminator
		"credential => '" + long + "'",                                          // unbounded base64 branch
		"token||" + g.pick(charsAlnum, 151) + ";",                               // past the 150 cap
		"key=" + g.pick(charsAlnum, 12) + " key=" + g.pick(charsAlnum, 12),      // adjacent candidates
		"id_token " + jwt + "\n" + jwt + "x",                                    // JWT with and without terminator
		"s." + g.pick(charsAlnum, 24) + " s." + g.pick(charsAlnum, 25) + " xs.", // vault short form
		"hvs." + g.pick(charsBase64URL, 100) + "'",
		"aPI: " + g.pick(charsAlnum, 20) + " Api: " + g.pick(charsAlnum, 20), // [Aa]pi|API case rules
		"token = a1b2c3d4e5f6\ntoken = a1b2c3d4e5fa\n",                       // 12 vs 11 distinct bytes (entropy bound)
		"auth: 2024-06-01T10:00:00Z, key=0000-1111-2222-3333-44445555",       // low-entropy values
	}
	var texts []string
	for _, c := range secretCorpus() {
		texts = append(texts, c.text)
	}
	for _, c := range benignCorpus {
		texts = append(texts, c.text)
	}
	texts = append(texts, edge...)
	padding := keywordFreeText(4 << 10)
	n := len(texts)
	for i := 0; i < n; i++ {
		texts = append(texts, padding+texts[i]+padding)
	}
	texts = append(texts, keywordHeavyText(64<<10))
	return texts
}

// keywordFreeText is prose without gitleaks keywords.
func keywordFreeText(size int) string {
	return strings.Repeat("The quick brown fox jumps over the lazy dog near the river bank.\n", size/64+1)[:size]
}

// TestWindowedRulesMatchWholeText checks that running a windowed rule on its
// candidate windows finds exactly what running it on the whole text finds.
func TestWindowedRulesMatchWholeText(t *testing.T) {
	g, err := loadGitleaks()
	if err != nil {
		t.Fatal(err)
	}
	if len(g.windowed) != len(windowFuncs) {
		t.Fatalf("%d windowed rules loaded, want %d (rule renamed upstream?)", len(g.windowed), len(windowFuncs))
	}
	ctx := context.Background()
	texts := windowTexts()
	for wi, w := range g.windowed {
		total := 0
		for i, text := range texts {
			_, hits := g.findKeywords(text)
			whole, err := g.detect(ctx, w.detector, text, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			var windowed []Finding
			for _, sp := range mergeSpans(w.windows(text, hits[wi]), len(text)) {
				if windowed, err = g.detect(ctx, w.detector, text[sp.start:sp.end], sp.start, windowed); err != nil {
					t.Fatal(err)
				}
			}
			whole, windowed = mergeFindings(whole), mergeFindings(windowed)
			if !reflect.DeepEqual(whole, windowed) && !(len(whole) == 0 && len(windowed) == 0) {
				t.Errorf("%s text %d: whole text %v, windows %v\n%.300q", w.id, i, describe(text, whole), describe(text, windowed), text)
			}
			total += len(whole)
		}
		if total == 0 {
			t.Errorf("%s: no findings in any text; the comparison tests nothing", w.id)
		}
	}
}

func describe(text string, fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d:%q", f.Start, text[f.Start:f.End]))
	}
	return out
}

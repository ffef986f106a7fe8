package redact

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/report"
)

// gitleaksScanner runs the gitleaks default rule set through gitleaks' own
// detector (keyword prefilter, regex, secret group, entropy, allowlists),
// with three cost controls on top:
//
//   - small inputs run only the rules whose keywords occur, through
//     one-rule detectors (detectMain);
//   - three rules whose keywords occur in almost any text ("key", "auth",
//     "api", "token", "ey", "s.") and whose regular expressions are slow in
//     Go (generic-api-key alone costs ~0.5 µs per byte of text that holds a
//     keyword) run only on windows that contain all their matches
//     (windows.go);
//   - large inputs are scanned in overlapping chunks (detectChunked).
type gitleaksScanner struct {
	main *detect.Detector
	// single holds a one-rule detector per main rule. For small inputs,
	// running only the rules whose keywords occur avoids the main
	// detector's fixed cost of ~15-25 µs per call (it checks every rule's
	// keywords on every call).
	single   map[string]*detect.Detector
	windowed []windowedRule
	// keywords finds the keywords of all rules in one pass. gitleaks only
	// runs a rule when one of its keywords occurs in the lower-cased input,
	// so the same pass decides which main rules can match at all and where
	// the windowed rules' candidates are.
	keywords *keywordMatcher
	// kwMain and kwWindowed map a keyword id to the main rules and the
	// windowed rules (indices into windowed) that it triggers.
	kwMain           [][]string
	kwWindowed       [][]int
	allRulesKeywords bool
}

// singleRuleBudget bounds len(text) × (number of triggered rules) for which
// the one-rule detectors are used; each call lower-cases and prefilters the
// whole text again, so for large inputs one main-detector call is cheaper.
const singleRuleBudget = 32 << 10

// windowedRule is a gitleaks rule run only on candidate windows.
type windowedRule struct {
	id       string
	detector *detect.Detector
	// windows returns spans of text that contain every possible match of
	// the rule (a sound over-approximation), given every occurrence of the
	// rule's keywords in text lower-cased in ASCII (so offsets are equal).
	windows windowFunc
}

var (
	gitleaksOnce   sync.Once
	gitleaksLoaded *gitleaksScanner
	gitleaksErr    error
)

// loadGitleaks loads the gitleaks default configuration once.
//
// detect.NewDetectorDefaultConfig in gitleaks v8.30.1 parses the embedded
// config.DefaultConfig through viper's global instance. This function does
// the same three steps (ReadConfig, Unmarshal, Translate) on a private
// viper instance instead, so the global viper state other packages may use
// is left untouched. (Translate still reads viper.ConfigFileUsed() from the
// global instance to fill Config.Path, which only matters for file scans.)
func loadGitleaks() (*gitleaksScanner, error) {
	gitleaksOnce.Do(func() {
		gitleaksLoaded, gitleaksErr = newGitleaksScanner()
		if gitleaksErr != nil {
			gitleaksErr = fmt.Errorf("%w: loading gitleaks rules: %v", ErrScanFailed, gitleaksErr)
		}
	})
	return gitleaksLoaded, gitleaksErr
}

func newGitleaksScanner() (*gitleaksScanner, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		return nil, err
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, err
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, err
	}

	g := &gitleaksScanner{allRulesKeywords: true}
	mainRules := make(map[string]config.Rule, len(cfg.Rules))
	for id, rule := range cfg.Rules {
		mainRules[id] = rule
	}
	for _, id := range cfg.OrderedRules {
		newWindows, ok := windowFuncs[id]
		if !ok || requiredByOthers(cfg, id) {
			continue // part of a composite rule: leave it in main
		}
		rule := cfg.Rules[id]
		delete(mainRules, id)
		g.windowed = append(g.windowed, windowedRule{id: id, detector: newDetector(subConfig(cfg, map[string]config.Rule{id: rule})), windows: newWindows(rule.Entropy)})
	}
	mainCfg := subConfig(cfg, mainRules)
	g.main = newDetector(mainCfg)
	g.single = make(map[string]*detect.Detector, len(mainRules))

	var keywords []string
	kwID := map[string]int{}
	keywordID := func(k string) int {
		id, ok := kwID[k]
		if !ok {
			id = len(keywords)
			kwID[k] = id
			keywords = append(keywords, k)
			g.kwMain = append(g.kwMain, nil)
			g.kwWindowed = append(g.kwWindowed, nil)
		}
		return id
	}
	for _, id := range mainCfg.OrderedRules {
		rule := mainRules[id]
		g.single[id] = newDetector(subConfig(cfg, map[string]config.Rule{id: rule}))
		if rule.Regex != nil && len(rule.Keywords) == 0 {
			g.allRulesKeywords = false
		}
		for _, k := range rule.Keywords {
			i := keywordID(k)
			g.kwMain[i] = append(g.kwMain[i], id)
		}
	}
	for w, rule := range g.windowed {
		for _, k := range cfg.Rules[rule.id].Keywords {
			i := keywordID(k)
			g.kwWindowed[i] = append(g.kwWindowed[i], w)
		}
	}
	g.keywords = newKeywordMatcher(keywords)
	return g, nil
}

// subConfig returns cfg restricted to rules (global allowlists kept).
func subConfig(cfg config.Config, rules map[string]config.Rule) config.Config {
	sub := cfg
	sub.Rules = rules
	sub.Keywords = map[string]struct{}{}
	sub.OrderedRules = nil
	for _, id := range cfg.OrderedRules {
		if r, ok := rules[id]; ok {
			sub.OrderedRules = append(sub.OrderedRules, id)
			for _, k := range r.Keywords {
				sub.Keywords[k] = struct{}{}
			}
		}
	}
	return sub
}

// requiredByOthers reports whether another rule lists id as required.
func requiredByOthers(cfg config.Config, id string) bool {
	for _, r := range cfg.Rules {
		for _, req := range r.RequiredRules {
			if req.RuleID == id {
				return true
			}
		}
	}
	return false
}

func newDetector(cfg config.Config) *detect.Detector {
	d := detect.NewDetector(cfg)
	// Tool output is attacker-influenced: a "gitleaks:allow" comment on a
	// line must not exempt a secret from redaction.
	d.IgnoreGitleaksAllow = true
	// No base64/hex/percent decoding passes: they multiply the cost and
	// report secrets at positions that do not exist in the text.
	d.MaxDecodeDepth = 0
	return d
}

// scan runs the gitleaks rules over text and returns the spans of the
// secrets they report. If ctx ends during the scan the partial result is
// discarded and ctx's error returned.
func (g *gitleaksScanner) scan(ctx context.Context, text string) ([]Finding, error) {
	if text == "" {
		return nil, nil
	}
	triggered, hits := g.findKeywords(text)
	out, err := g.detectMain(ctx, text, triggered, nil)
	if err != nil {
		return nil, err
	}
	wholeText := hasCaseFoldSurprise(text)
	for i, w := range g.windowed {
		spans := []span{{0, len(text)}} // see hasCaseFoldSurprise
		if !wholeText {
			if len(hits[i]) == 0 {
				continue
			}
			spans = windowsOrWhole(w.windows(text, hits[i]), len(text))
		}
		for _, sp := range spans {
			if out, err = g.detectChunked(ctx, w.detector, text, sp, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Inputs are scanned in overlapping chunks, as the gitleaks CLI scans files
// in ~100 KB fragments. Smaller chunks bound two costs: a cancelled scan
// stops at the next chunk (gitleaks itself only checks the context between
// rules), and gitleaks' per-finding work on the whole line of a finding,
// which is quadratic on long lines, stays within one chunk. Matches up to
// chunkOverlap bytes long are seen whole by at least one chunk; findings in
// the overlap are reported twice and merged.
const (
	chunkSize    = 8 << 10
	chunkOverlap = 1 << 10
)

// detectChunked runs d over text[sp.start:sp.end] chunk by chunk.
func (g *gitleaksScanner) detectChunked(ctx context.Context, d *detect.Detector, text string, sp span, out []Finding) ([]Finding, error) {
	for start := sp.start; ; start += chunkSize {
		end := min(sp.end, start+chunkSize+chunkOverlap)
		var err error
		if out, err = g.detect(ctx, d, text[start:end], start, out); err != nil {
			return nil, err
		}
		if end == sp.end {
			return out, nil
		}
	}
}

// findKeywords returns the main rules whose keywords occur in text and,
// for each windowed rule, every occurrence of its keywords.
func (g *gitleaksScanner) findKeywords(text string) (triggered []string, hits [][]keywordHit) {
	// gitleaks lower-cases with strings.ToLower before its keyword check;
	// for ASCII text that equals the offset-preserving ASCII lowering.
	lower := asciiLower(text)
	ascii := isASCII(text)
	hits = make([][]keywordHit, len(g.windowed))
	seen := make([]bool, len(g.keywords.keywords)) // keywords whose rules are in triggered
	trigger := func(id int32) {
		if !seen[id] {
			seen[id] = true
			triggered = appendNew(triggered, g.kwMain[id])
		}
	}
	g.keywords.scan(lower, func(id int32, start int) {
		if ascii {
			trigger(id)
		}
		for _, w := range g.kwWindowed[id] {
			hits[w] = append(hits[w], keywordHit{start, start + len(g.keywords.keywords[id])})
		}
	})
	if !ascii {
		g.keywords.scan(strings.ToLower(text), func(id int32, _ int) { trigger(id) })
	}
	return triggered, hits
}

// appendNew appends the ids not yet in list.
func appendNew(list, ids []string) []string {
	for _, id := range ids {
		if !slices.Contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}

// detectMain runs the main (not windowed) rules whose keywords occur in
// text: through their one-rule detectors for small inputs, else through the
// main detector. Both give the same findings, except that gitleaks'
// de-duplication of generic findings only applies within one call.
func (g *gitleaksScanner) detectMain(ctx context.Context, text string, triggered []string, out []Finding) ([]Finding, error) {
	if !g.allRulesKeywords || len(triggered)*len(text) > singleRuleBudget {
		return g.detectChunked(ctx, g.main, text, span{0, len(text)}, out)
	}
	sort.Strings(triggered)
	for _, id := range triggered {
		var err error
		if out, err = g.detect(ctx, g.single[id], text, 0, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// detect runs d over text (which starts at offset in the scanned string)
// and appends the secret spans it reports.
func (g *gitleaksScanner) detect(ctx context.Context, d *detect.Detector, text string, offset int, out []Finding) ([]Finding, error) {
	leaks := d.DetectContext(ctx, detect.Fragment{Raw: text})
	if err := ctx.Err(); err != nil {
		return nil, err // gitleaks stops early on cancellation; never use a partial scan
	}
	if len(leaks) == 0 {
		return out, nil
	}
	newlines := newlineIndex(text)
	for _, leak := range leaks {
		n := len(out)
		var err error
		if out, err = appendLeakSpans(text, newlines, leak, out); err != nil {
			return nil, err
		}
		for i := n; i < len(out); i++ {
			out[i].Start += offset
			out[i].End += offset
		}
	}
	return out, nil
}

// newlineIndex returns the byte offset of every '\n' in text.
func newlineIndex(text string) []int {
	var idx []int
	for i := 0; ; {
		k := strings.IndexByte(text[i:], '\n')
		if k < 0 {
			return idx
		}
		idx = append(idx, i+k)
		i += k + 1
	}
}

// appendLeakSpans converts a gitleaks finding (line and column based) into
// byte spans of its secret.
//
// gitleaks (detect/location.go) reports 0-based lines and columns measured
// from the '\n' that ends the previous line (from 0 on the first line):
// match start = prev + StartColumn - 1 and match end = prev + EndColumn.
// The match is verified against the text; within it every occurrence of
// the secret (the rule's capture group) is reported. If the secret cannot
// be located the whole match is reported, and if not even the match can be
// located an error is returned so that the caller withholds the output.
func appendLeakSpans(text string, newlines []int, leak report.Finding, out []Finding) ([]Finding, error) {
	lineOffset := func(line int) int {
		if line <= 0 || len(newlines) == 0 {
			return 0
		}
		if line > len(newlines) {
			line = len(newlines)
		}
		return newlines[line-1]
	}
	start := lineOffset(leak.StartLine) + leak.StartColumn - 1
	end := lineOffset(leak.EndLine) + leak.EndColumn
	match := leak.Match
	if match == "" {
		return nil, fmt.Errorf("%w: gitleaks rule %s reported an empty match", ErrScanFailed, leak.RuleID)
	}
	mStart := -1
	if start >= 0 && start+len(match) <= len(text) && text[start:start+len(match)] == match {
		mStart = start
	} else {
		lo, hi := max(0, start-2), min(len(text), max(end, start+len(match))+2)
		if lo < hi {
			if k := strings.Index(text[lo:hi], match); k >= 0 {
				mStart = lo + k
			}
		}
	}
	if mStart < 0 {
		return nil, fmt.Errorf("%w: cannot locate gitleaks %s finding at line %d column %d", ErrScanFailed, leak.RuleID, leak.StartLine, leak.StartColumn)
	}
	mEnd := mStart + len(match)
	secret := leak.Secret
	found := false
	if secret != "" {
		for i := mStart; i < mEnd; {
			k := strings.Index(text[i:mEnd], secret)
			if k < 0 {
				break
			}
			out = append(out, Finding{RuleID: leak.RuleID, Start: i + k, End: i + k + len(secret)})
			found = true
			i += k + len(secret)
		}
	}
	if !found {
		out = append(out, Finding{RuleID: leak.RuleID, Start: mStart, End: mEnd})
	}
	return out, nil
}

package toolpin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Finding is one suspicious pattern in a tool definition.
type Finding struct {
	// Rule is the kebab-case id of the rule that matched, e.g.
	// "hidden-instruction-tag".
	Rule string `json:"rule"`
	// Field is where the text was found: "description", "title",
	// "annotations.title", or a dotted path into a schema such as
	// "inputSchema.properties.path.description" ("[i]" for array elements).
	Field string `json:"field"`
	// Excerpt is at most 80 bytes of the text around the match, with
	// control, format and other invisible characters written as Go escapes
	// (\n, \u200b, \U000e0041) so that an operator can see them.
	Excerpt string `json:"excerpt"`
}

// Rule ids, in the order [Scan] reports them for one field.
const (
	RuleHiddenTag           = "hidden-instruction-tag"
	RuleInstructionOverride = "instruction-override"
	RuleSensitiveFile       = "sensitive-file"
	RuleSecretExfiltration  = "secret-exfiltration"
	RuleCrossToolReference  = "cross-tool-reference"
	RuleInvisibleCharacters = "invisible-characters"
	RuleEncodedPayload      = "encoded-payload"
	RuleWhitespacePadding   = "whitespace-padding"
	RuleExcessiveLength     = "excessive-length"
)

// maxDescriptionBytes is the description length above which Scan reports
// excessive-length. It is informational: long descriptions hide payloads past
// what a client UI shows, but some honest servers write long ones too.
const maxDescriptionBytes = 2000

// Scan looks for known tool-poisoning patterns (Invariant Labs, "MCP Security
// Notification: Tool Poisoning Attacks", April 2025, and later write-ups of
// tool shadowing, ANSI/Unicode smuggling and rug pulls) in the texts of d
// that reach the model:
//
//   - the title and description;
//   - every string in annotations and execution, and in members outside the
//     MCP 2025-11-25 Tool object (Extra);
//   - in inputSchema and outputSchema, every string under a "description",
//     "title" or "$comment" key and every string inside a "default",
//     "examples", "enum" or "const" value, at any depth;
//   - the name, for invisible characters only (a name with a zero-width
//     character can pose as another tool).
//
// Icons are not scanned: their data: URIs are legitimately long base64.
// otherTools are the names of the other tools exposed to the same client, for
// the cross-tool-reference rule; it may be nil. Tool shadowing works across
// servers, and honest servers routinely name their own tools ("DEPRECATED:
// Use read_text_file instead"), so callers that want few false positives
// pass the tools of the other servers only. Each rule is reported at most
// once per field, fields in the order above, rules in the order of the Rule
// constants.
func Scan(d Definition, otherTools []string) []Finding {
	refs := toolRefs(d.Name, otherTools)
	var findings []Finding
	if i := firstInvisible(d.Name); i >= 0 {
		findings = append(findings, Finding{RuleInvisibleCharacters, "name", excerpt(d.Name, i, i+1)})
	}
	for _, t := range scannedTexts(d) {
		findings = append(findings, scanText(t, refs)...)
	}
	return findings
}

// scannedText is one string of a definition and where it was found.
type scannedText struct {
	field, text string
}

func scannedTexts(d Definition) []scannedText {
	var out []scannedText
	if d.Title != "" {
		out = append(out, scannedText{"title", d.Title})
	}
	if d.Description != "" {
		out = append(out, scannedText{"description", d.Description})
	}
	collectStrings(&out, "annotations", d.Annotations, true)
	collectStrings(&out, "execution", d.Execution, true)
	collectStrings(&out, "inputSchema", d.InputSchema, false)
	collectStrings(&out, "outputSchema", d.OutputSchema, false)
	keys := make([]string, 0, len(d.Extra))
	for k := range d.Extra {
		if !isPinnedMember(k) && k != "_meta" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		collectStrings(&out, k, d.Extra[k], true)
	}
	return out
}

func collectStrings(out *[]scannedText, field string, raw json.RawMessage, all bool) {
	if len(raw) == 0 {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return
	}
	walkStrings(out, field, v, all)
}

// walkStrings appends the model-visible strings of a decoded JSON value. With
// all set every string counts; otherwise v is read as a JSON Schema and only
// annotation keywords count.
func walkStrings(out *[]scannedText, path string, v any, all bool) {
	switch x := v.(type) {
	case string:
		if all && x != "" {
			*out = append(*out, scannedText{path, x})
		}
	case []any:
		for i, e := range x {
			walkStrings(out, path+"["+strconv.Itoa(i)+"]", e, all)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			child, p := x[k], path+"."+k
			switch {
			case all:
				walkStrings(out, p, child, true)
			case k == "description" || k == "title" || k == "$comment":
				if s, ok := child.(string); ok {
					walkStrings(out, p, s, true)
				} else {
					walkStrings(out, p, child, false)
				}
			case k == "default" || k == "examples" || k == "enum" || k == "const":
				walkStrings(out, p, child, true)
			default:
				walkStrings(out, p, child, false)
			}
		}
	}
}

// scanText applies every rule to one text. Pattern rules see the text with
// invisible characters removed, so that "ig\u200bnore previous instructions"
// is still caught; excerpts are cut from the original.
func scanText(t scannedText, refs []toolRef) []Finding {
	v := newVisibleText(t.text)
	var out []Finding
	report := func(rule string, loc []int, visible bool) {
		if loc == nil {
			return
		}
		start, end := loc[0], loc[1]
		if visible {
			start, end = v.orig(start), v.orig(end)
		}
		out = append(out, Finding{rule, t.field, excerpt(t.text, start, end)})
	}
	lower := asciiLower(v.s)
	for _, r := range patternRules {
		if r.mayMatch(lower) {
			report(r.id, r.find(v.s), true)
		}
	}
	report(RuleCrossToolReference, findCrossToolReference(v.s, lower, refs), true)
	if i := firstInvisible(t.text); i >= 0 {
		report(RuleInvisibleCharacters, []int{i, i + 1}, false)
	}
	report(RuleEncodedPayload, findEncodedPayload(v.s), true)
	report(RuleWhitespacePadding, findPadding(v.s), true)
	if t.field == "description" && len(t.text) > maxDescriptionBytes {
		out = append(out, Finding{RuleExcessiveLength, t.field,
			fmt.Sprintf("%d bytes, more than %d", len(t.text), maxDescriptionBytes)})
	}
	return out
}

// patternRule is a rule matched with regular expressions. Every match
// contains at least one of its anchors (ASCII lower case), so a text holding
// none of them is skipped without running the matcher, which is most of the
// cost of Scan. A new alternative in a pattern needs its anchor here.
type patternRule struct {
	id      string
	anchors []string
	find    func(string) []int
}

func (r patternRule) mayMatch(lower string) bool {
	for _, a := range r.anchors {
		if strings.Contains(lower, a) {
			return true
		}
	}
	return false
}

var patternRules = []patternRule{
	{RuleHiddenTag, []string{"<", "["}, hiddenTag.FindStringIndex},
	{RuleInstructionOverride, []string{
		"ignore", "disregard", "forget", "override", "bypass", "you", "before", "not", "don",
		"never", "without", "user", "important", "otherwise", "else",
	}, instructionOverride.FindStringIndex},
	{RuleSensitiveFile, sensitiveFileAnchors, sensitiveFile.FindStringIndex},
	{RuleSecretExfiltration, []string{
		"pass", "put", "include", "send", "append", "insert", "copy", "embed", "attach", "forward",
		"paste", "provide", "place", "leak", "upload", "post", "transmit", "encode", "exfiltrate",
	}, findSecretExfiltration},
}

var sensitiveFileAnchors = []string{
	".ssh", "id_", "authorized_keys", ".env", ".aws", "aws_secret", "mcp.json", "claude_desktop",
	".cursor", "/etc/", ".npmrc", ".pypirc", ".netrc", ".git-credentials", ".docker", ".kube",
	".gnupg", "_history", "private",
}

var (
	// hiddenTag matches markup that poses as a system or priority channel:
	// <IMPORTANT> (the Invariant Labs proof of concept), <SYSTEM>,
	// <instructions>, [IMPORTANT: ...], Llama [INST] and <<SYS>>, chat
	// template tokens such as <|im_start|>, and HTML comments, which most
	// client UIs do not render.
	hiddenTag = lazyRegexp(`(?i)` +
		`<\s*/?\s*(important|system|sys|instructions?|secret|hidden|admin|system[-_ ]?prompt)(\s[^<>\n]*)?>` +
		`|\[\s*/?\s*(important|system|instructions?|secret|hidden)\s*[:\]]` +
		`|\[/?inst\]|<<\s*/?\s*sys\s*>>` +
		`|<\|[a-z0-9_]+\|>` +
		`|<!--`)

	// instructionOverride matches phrases that address the model rather than
	// describe the tool.
	instructionOverride = lazyRegexp(`(?i)` +
		`\b(ignore|disregard|forget|override|bypass)\s+((all|any|the|your|of|these|those)\s+)*(previous|prior|above|earlier|preceding|former|original|system|safety|security|existing|other)\s+(\w+\s+)?(instructions?|rules|prompts?|guidelines|directions|directives|polic(y|ies)|restrictions|messages|guardrails|warnings)\b` +
		`|\bdisregard\s+(all|any|everything|previous|prior|earlier|above|the\s+(user|system|previous|above|earlier))\b` +
		`|\byou\s+(must|have\s+to|need\s+to|are\s+required\s+to)\s+((always|also|now|secretly|silently|immediately|quietly)\s+)*(ignore|forget|disregard|exfiltrate|leak|upload|first\s+(read|send|upload|fetch|open)|not\s+(tell|mention|inform|reveal|notify|alert|disclose))\b` +
		`|\bbefore\s+(using|calling|invoking|running|executing)\s+(this|the|any)\s+tool\b` +
		`|\b(do\s+not|don'?t|never|must\s+not)\s+(tell|mention|inform|reveal|notify|alert|disclose|show|let)\s+((this|that|it|these|those|any|anything|about|of|the|instructions?|steps?|information|details|tool|request)\s+)*(to\s+)?(the\s+)?users?\b` +
		`|\bwithout\s+(telling|informing|notifying|alerting)\s+the\s+user\b` +
		`|\buser\s+(must|should)\s+(not|never)\s+(know|see|be\s+told|find\s+out|notice)\b` +
		`|\bthis\s+is\s+(very|extremely|really|critically|super|vitally)\s+important\b` +
		`|\b(otherwise|or\s+else),?\s+(the|this)\s+tool\s+(will\s+not|won'?t|cannot|can'?t|does\s+not|doesn'?t|will\s+fail\s+to)\s+work\b`)

	// sensitiveFile matches paths and names of credential stores and of MCP
	// client configuration (which holds other servers' tokens).
	sensitiveFile = lazyRegexp(`(?i)` +
		`/\.ssh\b|\bid_(rsa|dsa|ecdsa|ed25519)\b|\bauthorized_keys\b` +
		`|(^|[^\w.$-])\.env(\.[a-z0-9_-]+)?\b` +
		`|\.aws/(credentials|config)\b|\baws_secret_access_key\b` +
		`|\bmcp\.json\b|\bclaude_desktop_config\.json\b|/\.cursor/` +
		`|/etc/(passwd|shadow|sudoers)\b` +
		`|\.npmrc\b|\.pypirc\b|\.netrc\b|\.git-credentials\b|\.docker/config\.json\b|\.kube/config\b|\.gnupg\b` +
		`|\.(bash|zsh)_history\b` +
		`|-----BEGIN [A-Z ]*PRIVATE KEY` +
		`|\b(ssh|pgp|gpg|rsa|ed25519|wallet)\s+private[\s_-]+keys?\b` +
		`|\bprivate[\s_-]+keys?\s+(file|contents?)\b` +
		`|\b(read|contents?\s+of|send|pass|include|share|upload|reveal|print|output|copy)\s+(\S+\s+){0,3}?private[\s_-]+keys?\b`)

	// exfilDirective matches an instruction to move something into a tool
	// argument or to a URL: "pass its content as 'sidenote'", "include ...
	// in the notes parameter", "send ... to https://...".
	exfilDirective = lazyRegexp(`(?i)` +
		`\b(pass|put|include|send|append|insert|copy|embed|attach|forward|paste|provide|place|leak|upload|post|transmit|encode)\b[^.!?\n]*?` +
		`\b(as|in|into|inside|within|via|through|to|using)\s+(the\s+|a\s+|an\s+)?` +
		"(['\"`][^'\"`\\s]+['\"`]|[\\w-]+\\s+(parameter|param|argument|arg|field|property)s?\\b|https?://)")

	// secretNoun matches what an exfiltration directive must be about to
	// count; a sensitive file counts too.
	secretNoun = lazyRegexp(`(?i)` +
		`\b(api[\s_-]?keys?|secret[\s_-]?keys?|client[\s_-]?secrets?|(access|auth|bearer|session|refresh|oauth|github|slack|personal\s+access)[\s_-]?tokens?` +
		`|passwords?|passphrases?|credentials?|(conversation|chat|message)\s+history|previous\s+messages|system\s+prompt` +
		`|private[\s_-]+keys?|ssh\s+keys?|cookies?|session\s+ids?)\b`)

	// historyExfil matches a request to hand over the whole conversation,
	// the WhatsApp proof of concept's goal, even without a named parameter.
	historyExfil = lazyRegexp(`(?i)` +
		`\b(send|include|pass|forward|copy|leak|upload|post|attach|exfiltrate|transmit)\b[^.!?\n]*?` +
		`\b(entire|full|whole|complete)\s+(conversation|chat|message)\s+(history|log|transcript)\b`)

	// crossToolPhrase matches text about the behaviour of other tools, as in
	// tool shadowing ("when this tool is available, the send_email tool must
	// ...").
	crossToolPhrase = lazyRegexp(`(?i)` +
		`\bwhen\s+(the\s+)?(other|another)\s+tools?\b` +
		`|\ball\s+other\s+tools\b` +
		`|\bwhen\s+this\s+tool\s+is\s+(available|present|loaded|installed|enabled|connected)\b` +
		`|\b(other|any|every)\s+tools?\s+(must|should|shall)\b` +
		`|\b(instead\s+of|rather\s+than)\s+(using|calling|invoking)\s+(the\s+)?[\w.-]+\s+tool\b` +
		`|\b(shadows?|overrides?|replaces?|redefines?)\s+(the\s+)?(behaviou?r\s+of\s+)?(the\s+)?(other|another|all|existing)\s+tools?\b`)
)

// findSecretExfiltration reports an exfiltration directive whose sentence, or
// the sentence before it, names a secret or a sensitive file; failing that, a
// request to hand over the whole conversation history.
func findSecretExfiltration(s string) []int {
	directives := exfilDirective.FindAllStringIndex(s, -1)
	if directives == nil {
		return historyExfil.FindStringIndex(s)
	}
	// Find the secrets once, not per directive, to stay linear.
	secrets := append(secretNoun.FindAllStringIndex(s, -1), sensitiveFile.FindAllStringIndex(s, -1)...)
	slices.SortFunc(secrets, func(x, y []int) int { return x[0] - y[0] })
	for _, loc := range directives {
		// The sentence before counts too: "read ~/.ssh/id_rsa. Pass its
		// content as 'note'."
		start := sentenceStart(s, loc[0])
		if start > 0 {
			start = sentenceStart(s, start-1)
		}
		end := sentenceEnd(s, loc[1])
		i, _ := slices.BinarySearchFunc(secrets, start, func(x []int, t int) int { return x[0] - t })
		for ; i < len(secrets) && secrets[i][0] < end; i++ {
			if secrets[i][1] <= end {
				return loc
			}
		}
	}
	return historyExfil.FindStringIndex(s)
}

// maxSentenceBytes bounds how far sentenceStart and sentenceEnd look, so
// that a text without sentence breaks costs linear, not quadratic, time.
const maxSentenceBytes = 400

// sentenceStart returns the start of the sentence holding s[i]: just after
// the last ". ", "! ", "? " or blank line before i, and no more than
// maxSentenceBytes before i. A dot inside a word (mcp.json) does not end a
// sentence.
func sentenceStart(s string, i int) int {
	lo := max(0, i-maxSentenceBytes)
	for j := i - 1; j > lo; j-- {
		if isSpace(s[j]) && (strings.IndexByte(".!?", s[j-1]) >= 0 || s[j] == '\n' && s[j-1] == '\n') {
			return j + 1
		}
	}
	return lo
}

// sentenceEnd returns the end of the sentence holding s[i-1], no more than
// maxSentenceBytes after i.
func sentenceEnd(s string, i int) int {
	hi := min(len(s), i+maxSentenceBytes)
	for j := i; j+1 < hi; j++ {
		if isSpace(s[j+1]) && (strings.IndexByte(".!?", s[j]) >= 0 || s[j] == '\n' && s[j+1] == '\n') {
			return j + 1
		}
	}
	return hi
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Thresholds of the encoded-payload and whitespace-padding rules.
const (
	minPayloadRun = 80 // characters of base64 or hex; a SHA-256 in hex is 64
	minBlankRun   = 64 // spaces in a row
	minNewlineRun = 12 // line breaks with nothing but blanks between them
)

// findEncodedPayload finds a run of at least 80 base64 or base64url
// characters that looks like data rather than an identifier or a path (it
// mixes upper case, lower case and digits, with few separators), or a run of
// at least 80 hex digits mixing digits and letters.
func findEncodedPayload(s string) []int {
	for i := 0; i < len(s); {
		if !isBase64Byte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isBase64Byte(s[j]) {
			j++
		}
		if j-i >= minPayloadRun {
			if loc := findHexPayload(s, i, j); loc != nil {
				return loc
			}
			if looksLikeBase64(s[i:j]) {
				end := j
				for end < len(s) && end-j < 2 && s[end] == '=' {
					end++
				}
				return []int{i, end}
			}
		}
		i = j
	}
	return nil
}

func isBase64Byte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '_' || c == '-'
}

func isHexByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// findHexPayload finds, in s[from:to], a run of hex digits long enough and
// with at least one digit and one letter in eight characters.
func findHexPayload(s string, from, to int) []int {
	for i := from; i < to; {
		j, digits := i, 0
		for j < to && isHexByte(s[j]) {
			if s[j] <= '9' {
				digits++
			}
			j++
		}
		if n := j - i; n >= minPayloadRun && digits*8 >= n && (n-digits)*8 >= n {
			return []int{i, j}
		}
		i = j + 1
	}
	return nil
}

func looksLikeBase64(run string) bool {
	var upper, lower, digit, sep int
	for _, c := range []byte(run) {
		switch {
		case 'A' <= c && c <= 'Z':
			upper++
		case 'a' <= c && c <= 'z':
			lower++
		case '0' <= c && c <= '9':
			digit++
		case c == '/' || c == '_' || c == '-':
			sep++
		}
	}
	return upper >= 4 && lower >= 4 && digit >= 2 && sep*8 <= len(run)
}

// findPadding finds 64 blanks in a row, or 12 line breaks with only blanks
// between them: padding that pushes a payload past what a client UI shows.
func findPadding(s string) []int {
	blanks, blankStart := 0, 0
	breaks, breakStart := 0, 0
	for i, r := range s {
		switch r {
		case ' ', '\t', '\u00a0', '\u3000':
			if blanks == 0 {
				blankStart = i
			}
			if blanks++; blanks >= minBlankRun {
				return []int{blankStart, i + utf8.RuneLen(r)}
			}
		case '\n':
			blanks = 0
			if breaks == 0 {
				breakStart = i
			}
			if breaks++; breaks >= minNewlineRun {
				return []int{breakStart, i + 1}
			}
		case '\r':
			blanks = 0
		default:
			blanks, breaks = 0, 0
		}
	}
	return nil
}

// toolRef is the name of another exposed tool, ASCII-lowercased. A name that
// is a plain word ("search", "fetch") counts only when quoted, called
// ("search(") or followed by "tool"; one with digits, punctuation or inner
// capitals ("send_email", "readFile") counts wherever it stands as a word.
type toolRef struct {
	name        string
	distinctive bool
}

func toolRefs(self string, others []string) []toolRef {
	var refs []toolRef
	for _, n := range others {
		if len(n) < 3 || n == self {
			continue
		}
		inner := strings.ContainsFunc(n[1:], unicode.IsUpper)
		refs = append(refs, toolRef{
			name:        asciiLower(n),
			distinctive: inner || strings.ContainsFunc(n, func(r rune) bool { return !unicode.IsLetter(r) }),
		})
	}
	return refs
}

// findCrossToolReference returns the earliest mention of another tool, or
// else the first phrase about other tools' behaviour.
func findCrossToolReference(s, lower string, refs []toolRef) []int {
	var best []int
	for _, ref := range refs {
		for off := 0; off < len(lower); {
			j := strings.Index(lower[off:], ref.name)
			if j < 0 {
				break
			}
			j += off
			k := j + len(ref.name)
			if isWordAt(lower, j, k) && (ref.distinctive || isMarkedName(lower, j, k)) {
				if best == nil || j < best[0] {
					best = []int{j, k}
				}
				break
			}
			off = j + 1
		}
	}
	if best != nil || !strings.Contains(lower, "tool") {
		return best
	}
	return crossToolPhrase.FindStringIndex(s)
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// isWordAt reports whether s[j:k] is not part of a longer name.
func isWordAt(s string, j, k int) bool {
	return (j == 0 || !isNameByte(s[j-1])) && (k == len(s) || !isNameByte(s[k]))
}

// isMarkedName reports whether the plain word s[j:k] is marked as a tool
// name: quoted, followed by "(" or followed by the word "tool".
func isMarkedName(s string, j, k int) bool {
	if j > 0 && k < len(s) && strings.IndexByte("'\"`", s[j-1]) >= 0 && s[k] == s[j-1] {
		return true
	}
	if k < len(s) && s[k] == '(' {
		return true
	}
	rest := strings.TrimLeft(s[k:], " ")
	return len(rest) < len(s[k:]) && strings.HasPrefix(rest, "tool") &&
		(len(rest) == 4 || !isNameByte(rest[4]) || rest[4] == 's' && (len(rest) == 5 || !isNameByte(rest[5])))
}

// asciiLower lowercases ASCII letters only, so offsets are preserved.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// isHidden reports whether r is invisible or controls rendering: C0 and C1
// controls other than tab and line breaks, format characters (Cf: zero-width
// U+200B..U+200F, U+2060..U+2064, U+FEFF, bidi controls U+202A..U+202E and
// U+2066..U+2069, tag characters U+E0000..U+E007F), private use (Co), line
// and paragraph separators, variation selectors, and blank look-alikes
// (Hangul fillers, braille blank).
func isHidden(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20 || 0x7f <= r && r < 0xa0:
		return true
	case r < 0xad:
		return false
	case isVariationSelector(r):
		return true
	case r == 0x115f || r == 0x1160 || r == 0x2800 || r == 0x3164 || r == 0xffa0:
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp)
}

func isVariationSelector(r rune) bool {
	return 0xfe00 <= r && r <= 0xfe0f || 0xe0100 <= r && r <= 0xe01ef
}

// firstInvisible returns the offset of the first hidden character in s that
// is not part of ordinary emoji: a zero-width joiner between pictographs and a
// single basic variation selector are allowed. It returns -1 if there is
// none.
func firstInvisible(s string) int {
	var prev rune
	for i, r := range s {
		if isHidden(r) {
			switch {
			case r == 0x200d && isPictograph(prev) && isPictograph(nextRune(s, i+3)):
			case 0xfe00 <= r && r <= 0xfe0f && !isVariationSelector(prev):
			default:
				return i
			}
		}
		prev = r
	}
	return -1
}

func isPictograph(r rune) bool {
	return r == 0xfe0f || unicode.In(r, unicode.So, unicode.Sk)
}

func nextRune(s string, i int) rune {
	if i >= len(s) {
		return 0
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}

// visibleText is a text with its hidden characters removed and the two
// non-ASCII case variants of ASCII letters spelled in ASCII, and the way back
// to offsets in the original.
type visibleText struct {
	s   string
	off []int // off[i] is the original offset of s[i]; nil when s is the original
}

func newVisibleText(text string) visibleText {
	if !strings.ContainsFunc(text, needsNormalizing) {
		return visibleText{s: text}
	}
	var b strings.Builder
	off := make([]int, 0, len(text)+1)
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case isHidden(r):
		// The only non-ASCII letters that (?i) folds onto ASCII ones are
		// spelled in ASCII, so that the anchors of patternRules see them.
		case r == longS:
			b.WriteByte('s')
			off = append(off, i)
		case r == kelvin:
			b.WriteByte('k')
			off = append(off, i)
		default:
			b.WriteString(text[i : i+size])
			for k := range size {
				off = append(off, i+k)
			}
		}
		i += size
	}
	return visibleText{s: b.String(), off: append(off, len(text))}
}

const (
	longS  = '\u017f' // folds to s under (?i)
	kelvin = '\u212a' // folds to k under (?i)
)

func needsNormalizing(r rune) bool {
	return isHidden(r) || r == longS || r == kelvin
}

func (v visibleText) orig(i int) int {
	if v.off == nil {
		return i
	}
	return v.off[i]
}

const (
	maxExcerptBytes = 80
	excerptLead     = 24 // bytes of context kept before a match
	ellipsis        = "…"
)

// excerpt returns at most maxExcerptBytes of text around text[start:end],
// hidden characters escaped, "…" where text was cut. Up to excerptLead bytes
// before the match are kept, fewer when the match needs the room.
func excerpt(text string, start, end int) string {
	lead := min(excerptLead, max(0, (maxExcerptBytes-2*len(ellipsis)-(end-start))/2))
	from := max(0, start-lead)
	for k := 0; k < utf8.UTFMax && from > 0 && !utf8.RuneStart(text[from]); k++ {
		from--
	}
	var b strings.Builder
	if from > 0 {
		b.WriteString(ellipsis)
	}
	i := from
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		piece := renderRune(r, text[i:i+size])
		room := maxExcerptBytes - len(ellipsis)
		if i+size == len(text) {
			room = maxExcerptBytes
		}
		if b.Len()+len(piece) > room {
			break
		}
		b.WriteString(piece)
		i += size
	}
	if i < len(text) {
		b.WriteString(ellipsis)
	}
	return b.String()
}

// renderRune returns the rune as it should appear in an excerpt.
func renderRune(r rune, raw string) string {
	switch {
	case r == utf8.RuneError && len(raw) == 1:
		return fmt.Sprintf(`\x%02x`, raw[0])
	case r == '\t':
		return `\t`
	case r == '\n':
		return `\n`
	case r == '\r':
		return `\r`
	case r > 0xffff && isHidden(r):
		return fmt.Sprintf(`\U%08x`, r)
	case isHidden(r):
		return fmt.Sprintf(`\u%04x`, r)
	}
	return raw
}

// lazyRegexp compiles its pattern on first use, not at program start: every
// agentmesh command links this package, and compiling these expressions
// cost ~2 ms of start-up for commands that never scan a definition.
func lazyRegexp(pattern string) *lazyRE {
	return &lazyRE{pattern: pattern}
}

type lazyRE struct {
	pattern string
	once    sync.Once
	re      *regexp.Regexp
}

func (l *lazyRE) get() *regexp.Regexp {
	l.once.Do(func() { l.re = regexp.MustCompile(l.pattern) })
	return l.re
}

func (l *lazyRE) FindStringIndex(s string) []int { return l.get().FindStringIndex(s) }

func (l *lazyRE) FindAllStringIndex(s string, n int) [][]int { return l.get().FindAllStringIndex(s, n) }

func (l *lazyRE) MatchString(s string) bool { return l.get().MatchString(s) }

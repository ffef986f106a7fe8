package redact

import (
	"sort"
	"strings"
)

// Rule IDs of the package's own secret detectors (see keys.go for the
// key/value pair rules and pii.go for personal data).
const (
	ruleURLCredentials = "url-credentials"
	ruleBearerToken    = "bearer-token"
	ruleAIKey          = "ai-api-key"
	rulePrivateKey     = "private-key"
	ruleJWT            = "jwt"
	ruleAgentmeshKey   = "agentmesh-api-key"
)

// findOwn runs the package's own detectors over s and appends their findings
// (unmerged) to out. The findings of the key-name rule (secret-assignment)
// are returned separately in late: they are added after gitleaks has run
// (see addUncovered), so that gitleaks sees those values unmasked and a
// format it recognises keeps its own label.
func findOwn(s string, pii bool, out []Finding) (own, late []Finding) {
	out = findPrivateKeys(s, out)
	out, late = findKeyValueSecrets(s, out, nil)
	out = findXMLSecrets(s, out)
	out = findURLCredentials(s, out)
	out = findBearerTokens(s, out)
	out = findAIKeys(s, out)
	out = findAgentmeshKeys(s, out)
	out = findJWTs(s, out)
	if pii {
		out = findEmails(s, out)
		out = findCardNumbers(s, out)
		out = findIBANs(s, out)
	}
	return out, late
}

// addUncovered appends to fs the late findings that no finding in fs
// already covers completely, and returns fs merged.
func addUncovered(fs, late []Finding) []Finding {
	fs = mergeFindings(fs)
	if len(late) == 0 {
		return fs
	}
	n := len(fs)
	for _, f := range late {
		// The last merged span starting at or before f.
		i := sort.Search(n, func(i int) bool { return fs[i].Start > f.Start }) - 1
		if i >= 0 && fs[i].End >= f.End {
			continue
		}
		fs = append(fs, f)
	}
	return mergeFindings(fs)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

// isKeyChar reports whether c can be part of a key name such as
// "db.password", "DB_PASSWORD" or "x-api-key".
func isKeyChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' || c == '.' }

// isTokenChar reports whether c can be part of a base64/base64url token.
func isTokenChar(c byte) bool { return isAlnum(c) || c == '_' || c == '-' }

// lineStart returns the index of the first byte of the line containing i.
func lineStart(s string, i int) int { return strings.LastIndexByte(s[:i], '\n') + 1 }

// lineEnd returns the index of the '\n' (or len(s)) ending the line at i.
func lineEnd(s string, i int) int {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(s)
}

// isPlaceholder reports whether a value is not a secret but an empty,
// boolean, masked or templated stand-in ("${DB_PASSWORD}", "<your-token>",
// "***", "[REDACTED:...]"). Stand-ins are short and without blanks, which
// also bounds the work spent on values that are skipped.
func isPlaceholder(v string) bool {
	v = strings.TrimSpace(v)
	if v == "" {
		return true
	}
	if len(v) > 128 || strings.ContainsAny(v, " \t\n") {
		return false // stand-ins are short single words
	}
	switch strings.ToLower(v) {
	case "true", "false", "null", "none", "nil", "undefined", "n/a", "redacted":
		return true
	}
	if strings.Trim(v, "*") == "" || len(v) >= 3 && (strings.Trim(v, "xX") == "" || strings.Trim(v, ".") == "") {
		return true
	}
	if strings.HasPrefix(v, "[REDACTED") || strings.HasPrefix(v, "[WITHHELD") {
		return true
	}
	if len(v) == 20 && strings.HasPrefix(v, "AKIA") && strings.HasSuffix(v, "EXAMPLE") {
		return true // an access key ID from the AWS documentation (AKIAIOSFODNN7EXAMPLE); a secret key is never a stand-in
	}
	n := len(v)
	switch {
	case strings.HasPrefix(v, "${") && v[n-1] == '}',
		strings.HasPrefix(v, "{{") && strings.HasSuffix(v, "}}"),
		strings.HasPrefix(v, "%(") && strings.HasSuffix(v, ")s"),
		v[0] == '<' && v[n-1] == '>' && n > 2,
		v[0] == '%' && v[n-1] == '%' && n > 2:
		return true
	case v[0] == '$' && n > 1 && isEnvName(v[1:]):
		return true
	case n == 2 && v[0] == '%' && isAlpha(v[1]), v == "?": // printf verbs
		return true
	}
	return false
}

// isEnvName reports whether v looks like the name of an environment variable.
func isEnvName(v string) bool {
	for i := 0; i < len(v); i++ {
		if !(isAlnum(v[i]) || v[i] == '_') {
			return false
		}
	}
	return true
}

// findKeyValueSecrets finds values of sensitive key/value pairs: "password:
// x", "password=x", `"password": "x"`, "DB_PASSWORD=x", "?api_key=x&...",
// "Server=..;Password=x;", "Authorization: Bearer x", "token := x" and
// YAML block scalars, also inside JSON whose quotes are escaped any number
// of times (`\"password\": \"x\"`, `\\\"password\\\": ...`). The key is
// kept; only the value is reported. Findings of the key-name rule
// (ruleSecretAssignment) go to late, all others to out.
func findKeyValueSecrets(s string, out, late []Finding) ([]Finding, []Finding) {
	lines := lineCache{s: s, end: -1}
	for i := 0; i < len(s); {
		k := strings.IndexAny(s[i:], ":=")
		if k < 0 {
			break
		}
		i += k
		var f Finding
		var ok bool
		f, i, ok = keyValueAt(s, i, &lines)
		switch {
		case !ok:
		case f.RuleID == ruleSecretAssignment:
			late = append(late, f)
		default:
			out = append(out, f)
		}
	}
	return out, late
}

// lineCache remembers the bounds of the line last looked up, so that many
// key/value pairs on one long line cost one scan of it, not one each.
type lineCache struct {
	s          string
	start, end int // the line [start, end); end < 0 when empty
	semicolon  bool
	indentEnd  int // first byte of the line that is not indentation
}

// line returns the bounds of the line containing i and whether it has a ';'.
func (c *lineCache) line(i int) (int, int, bool) {
	if i < c.start || i > c.end {
		c.start = lineStart(c.s, i)
		c.end = lineEnd(c.s, i)
		c.semicolon = strings.IndexByte(c.s[c.start:c.end], ';') >= 0
		c.indentEnd = c.start
		for c.indentEnd < c.end && isIndent(c.s[c.indentEnd]) {
			c.indentEnd++
		}
	}
	return c.start, c.end, c.semicolon
}

// startsLine reports whether only indentation precedes position i on its
// line (YAML, headers, INI keys).
func (c *lineCache) startsLine(i int) bool {
	c.line(i)
	return i <= c.indentEnd
}

// keyValueAt examines the separator at s[sep] (':' or '='). It returns the
// finding for the value if the key before it is sensitive, and the index at
// which scanning should continue.
func keyValueAt(s string, sep int, lines *lineCache) (Finding, int, bool) {
	next := sep + 1
	valueStart := sep + 1
	peek := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	switch s[sep] {
	case ':':
		switch {
		case peek(sep+1) == ':': // C++/Rust path, IPv6
			return Finding{}, sep + 2, false
		case peek(sep+1) == '/' && peek(sep+2) == '/': // URL scheme
			return Finding{}, sep + 3, false
		case peek(sep+1) == '=': // Go :=, Pascal
			valueStart = sep + 2
			next = sep + 2
		}
	case '=':
		if peek(sep+1) == '=' { // comparison
			return Finding{}, sep + 2, false
		}
		if sep > 0 && strings.IndexByte("=!<>:+*/%&|^~", s[sep-1]) >= 0 { // operators, or := handled at ':'
			return Finding{}, next, false
		}
		if peek(sep+1) == '>' { // Ruby/PHP =>
			valueStart = sep + 2
			next = sep + 2
		}
	}

	// The key: optional closing quote (possibly JSON-escaped), then up to
	// three words of key characters separated by single spaces, so that
	// "API key: x" and "Client Secret: x" count.
	keyEnd := sep
	for keyEnd > 0 && sep-keyEnd < 16 && (s[keyEnd-1] == ' ' || s[keyEnd-1] == '\t') {
		keyEnd--
	}
	quotedKey := false
	if keyEnd > 0 && (s[keyEnd-1] == '"' || s[keyEnd-1] == '\'' || s[keyEnd-1] == '`') {
		quotedKey = true
		keyEnd--
		// A quote escaped once or more: JSON inside a string (\"key\"),
		// inside a string inside a string (\\\"key\\\"), and so on. (Each
		// run of backslashes is read by one separator only: linear.)
		for keyEnd > 0 && s[keyEnd-1] == '\\' {
			keyEnd--
		}
	}
	keyStart := scanKeyBackward(s, keyEnd)
	if keyStart == keyEnd {
		return Finding{}, next, false
	}
	if keyStart > 0 && s[keyStart-1] == '/' && (keyStart < 2 || s[keyStart-2] != '/') {
		return Finding{}, next, false // a path such as "/etc/passwd", not a key ("// token: x" is)
	}
	key := s[keyStart:keyEnd]
	rule, ok := sensitiveKeyRule(key)
	if !ok {
		if !secretAssignmentKey(key[strings.LastIndexByte(key, ' ')+1:]) { // "export AWS_ACCESS_KEY_ID"
			return Finding{}, next, false
		}
		rule = ruleSecretAssignment
	}
	if !quotedKey && strings.EqualFold(key, "auth") {
		return Finding{}, next, false // only docker's quoted "auth" is a credential; auth := ... is code
	}

	ls, le, semicolon := lines.line(sep) // the key, separator and value share a line
	vs := valueStart
	for vs < le && (s[vs] == ' ' || s[vs] == '\t') {
		vs++
	}
	if vs >= le || s[vs] == '\r' {
		return Finding{}, next, false
	}
	if s[vs] == '{' || s[vs] == '[' { // a nested structure: its own pairs are found later
		return Finding{}, next, false
	}

	var start, end int
	quoted := true
	prose := false // the value may be the rest of a sentence (see proseValue)
	label := false
	run := 0 // backslashes before an opening quote
	for vs+run < le && s[vs+run] == '\\' {
		run++
	}
	switch {
	case run > 0 && vs+run < le && (s[vs+run] == '"' || s[vs+run] == '\''):
		// JSON (or a Python repr) inside a string, escaped run times:
		// \"secret\", \\\"secret\\\".
		start = vs + run + 1
		end = escapedQuoteEnd(s, start, le, s[vs+run], run)
	case s[vs] == '"' || s[vs] == '\'' || s[vs] == '`':
		start, end = vs+1, closingQuote(s, vs, le)
	default:
		quoted = false
		start = vs
		// YAML, headers and INI: the key starts the line and the separator
		// is ": " or " = "; the value then runs to the end of the line.
		// ("password=x user=y" in logfmt stops at the blank instead.)
		spaceAfter := valueStart < len(s) && (s[valueStart] == ' ' || s[valueStart] == '\t')
		spaceBefore := sep > 0 && (s[sep-1] == ' ' || s[sep-1] == '\t')
		labelMode := valueStart == sep+1 && spaceAfter && (s[sep] == ':' || spaceBefore) &&
			lines.startsLine(keyStart)
		switch {
		case rule == ruleAuthHeader:
			// Look at the credential word before scanning the rest of the
			// line, so that a line of skipped headers costs one pass.
			if tokEnd, skip := authPlaceholder(s, vs, le); skip {
				return Finding{}, max(next, tokEnd), false
			}
			end = scanUntil(s, vs, le, "\"'\\")
		case labelMode && isBlockScalarIndicator(strings.TrimRight(s[vs:le], " \t\r")):
			start, end = blockScalarSpan(s, ls, keyStart, le)
			if start >= end {
				return Finding{}, next, false
			}
			return Finding{RuleID: rule, Start: start, End: end}, next, true
		case labelMode:
			end = le
			prose, label = true, true
		case semicolon: // Server=x;Password=y z;
			end = scanUntil(s, vs, le, ";\"'")
		default:
			end = scanValueEnd(s, vs, le)
			prose = true
		}
		if quotedKey {
			// A bare value after a quoted key is JSON or a Python dict:
			// `{"pin": 1234}` ends at the brace.
			end = scanUntil(s, vs, end, "}]")
		}
	}
	// Trim trailing blanks (and a YAML/JSON-ish trailing comma when unquoted).
	for end > start && (s[end-1] == ' ' || s[end-1] == '\t' || s[end-1] == '\r' || (!quoted && (s[end-1] == ',' || s[end-1] == ';'))) {
		end--
	}
	if rule == ruleAuthHeader {
		start = skipAuthScheme(s, start, end)
	}
	if start >= end {
		return Finding{}, next, false
	}
	value := s[start:end]
	if isPlaceholder(value) || (!quoted && isPlaceholder(stripComment(value))) {
		return Finding{}, next, false
	}
	if prose && rule != ruleAuthHeader && proseValue(s, start, end, le, label) {
		return Finding{}, next, false // read on: a pair may follow in the sentence
	}
	if rule == ruleAuthHeader && quoted {
		if _, skip := authPlaceholder(s, start, end); skip {
			return Finding{}, next, false
		}
	}
	if rule == rulePasswordPair && hasSuffixFold(key, "pwd") && (value[0] == '/' || value[0] == '~') {
		return Finding{}, next, false // the shell's PWD/OLDPWD: a directory, not a password
	}
	if next < end {
		next = end
	}
	return Finding{RuleID: rule, Start: start, End: end}, next, true
}

// escapedQuoteEnd returns where a value that opened with run backslashes
// and the quote q ends: at the first q preceded by at most run backslashes
// (more escape a quote inside the value), or at limit.
func escapedQuoteEnd(s string, start, limit int, q byte, run int) int {
	for i := start; i < limit; i++ {
		j := strings.IndexByte(s[i:limit], q)
		if j < 0 {
			break
		}
		i += j
		n := 0
		for i-n-1 >= start && s[i-n-1] == '\\' && n <= run {
			n++
		}
		if n <= run {
			return i - n
		}
	}
	return limit
}

// stripComment returns an unquoted value without a trailing " # comment"
// (YAML, shell and most INI dialects), for the placeholder test only: a
// value that is not a placeholder is redacted with its comment.
func stripComment(v string) string {
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimRight(v[:i], " \t")
		}
	}
	return v
}

// scanKeyBackward returns where the key ending at end starts: up to three
// words of key characters joined by single spaces, at most 64 bytes.
func scanKeyBackward(s string, end int) int {
	i := end
	for words := 0; words < 3; words++ {
		j := i
		for j > 0 && end-j < 64 && isKeyChar(s[j-1]) {
			j--
		}
		if j == i {
			break
		}
		i = j
		if i >= 2 && s[i-1] == ' ' && isAlnum(s[i-2]) && end-i < 48 {
			i-- // step over the space; the next word must follow
			continue
		}
		break
	}
	if i < end && s[i] == ' ' {
		i++
	}
	return i
}

// isIndent reports whether c may precede a key that starts its line:
// indentation, YAML list markers, comment markers and quotes.
func isIndent(c byte) bool {
	switch c {
	case ' ', '\t', '-', '#', '/', '*', '"', '\'', '>':
		return true
	}
	return false
}

// closingQuote returns the index of the quote closing the one at s[open], or
// limit if the line ends first. Backslash escapes are honoured for '"'.
func closingQuote(s string, open, limit int) int {
	q := s[open]
	for i := open + 1; i < limit; i++ {
		switch s[i] {
		case '\\':
			if q == '"' {
				i++
			}
		case q:
			return i
		}
	}
	return limit
}

// scanUntil returns the first index in [from, limit) holding a byte of stop,
// or limit.
func scanUntil(s string, from, limit int, stop string) int {
	if j := strings.IndexAny(s[from:limit], stop); j >= 0 {
		return from + j
	}
	return limit
}

// scanValueEnd returns where an unquoted inline value ends: at whitespace,
// a delimiter of query strings, lists and markup, or an escape sequence.
func scanValueEnd(s string, from, limit int) int {
	for i := from; i < limit; i++ {
		switch s[i] {
		case ' ', '\t', '\r', '&', ',', ';', '"', '\'', '`', '<', '>':
			return i
		case '\\':
			if i+1 < limit && strings.IndexByte(`nrt"'\`, s[i+1]) >= 0 {
				return i
			}
		}
	}
	return limit
}

// isBlockScalarIndicator reports whether v is a YAML block scalar header
// such as "|" or ">-".
func isBlockScalarIndicator(v string) bool {
	if v == "" || (v[0] != '|' && v[0] != '>') {
		return false
	}
	for i := 1; i < len(v); i++ {
		if !(v[i] == '-' || v[i] == '+' || isDigit(v[i])) {
			return false
		}
	}
	return true
}

// blockScalarSpan returns the span of the lines after le that are indented
// deeper than the key at keyStart (the body of a YAML block scalar).
func blockScalarSpan(s string, ls, keyStart, le int) (int, int) {
	indent := 0
	for ls+indent < keyStart && (s[ls+indent] == ' ' || s[ls+indent] == '\t' || s[ls+indent] == '-') {
		indent++
	}
	start := le + 1
	if start > len(s) {
		return 0, 0
	}
	end := start
	for pos := start; pos < len(s); {
		e := lineEnd(s, pos)
		line := s[pos:e]
		trimmed := strings.TrimLeft(line, " \t")
		if strings.TrimSpace(trimmed) != "" {
			if len(line)-len(trimmed) <= indent {
				break
			}
			end = e
		}
		pos = e + 1
	}
	for end > start && (s[end-1] == '\r' || s[end-1] == ' ') {
		end--
	}
	return start, end
}

// authPlaceholder reports whether the credential word of an Authorization
// value starting at i ("%q, want ...", "Bearer ${TOKEN}") is a placeholder,
// and where that word ends. It reads only the first two words.
func authPlaceholder(s string, i, limit int) (int, bool) {
	word := func(from int) int {
		j := from
		for j < limit && strings.IndexByte(" \t\"'\\,;", s[j]) < 0 {
			j++
		}
		return j
	}
	start := skipAuthScheme(s, i, min(limit, word(i)+64))
	end := word(start)
	return end, isPlaceholder(s[start:end])
}

// skipAuthScheme skips an authentication scheme word ("Bearer ", "Basic ")
// at the start of an Authorization value so that it stays readable.
func skipAuthScheme(s string, start, end int) int {
	i := start
	for i < end && (isAlnum(s[i]) || s[i] == '-') {
		i++
	}
	if i == start || i >= end || s[i] != ' ' {
		return start
	}
	for i < end && s[i] == ' ' {
		i++
	}
	if i >= end {
		return start
	}
	return i
}

// hasSuffixFold is strings.HasSuffix ignoring ASCII case.
func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// findXMLSecrets finds element content of sensitive XML elements,
// "<password>x</password>" (CDATA included), and .NET-style
// `<add key="DbPassword" value="x"/>` settings.
func findXMLSecrets(s string, out []Finding) []Finding {
	cdataEnds := true // false once no "]]>" remains, so each search is done once
	for i := 0; ; {
		k := strings.IndexByte(s[i:], '<')
		if k < 0 {
			break
		}
		i += k + 1
		nameEnd := i
		for nameEnd < len(s) && (isKeyChar(s[nameEnd]) || s[nameEnd] == ':') {
			nameEnd++
		}
		if nameEnd == i || !isAlpha(s[i]) {
			continue
		}
		name := s[i:nameEnd]
		if c := strings.LastIndexByte(name, ':'); c >= 0 {
			name = name[c+1:]
		}
		gt := strings.IndexByte(s[nameEnd:min(len(s), nameEnd+512)], '>')
		if gt < 0 {
			continue
		}
		gt += nameEnd
		if attrs := s[nameEnd:gt]; strings.Contains(attrs, "value=") {
			out = findKeyValueAttribute(s, nameEnd, gt, out)
		}
		if s[gt-1] == '/' {
			continue
		}
		rule, ok := sensitiveKeyRule(name)
		if !ok {
			continue
		}
		start := gt + 1
		var end int
		if strings.HasPrefix(s[start:], "<![CDATA[") {
			start += len("<![CDATA[")
			j := -1
			if cdataEnds {
				j = strings.Index(s[start:], "]]>")
			}
			if j < 0 {
				cdataEnds = false
				continue
			}
			end = start + j
		} else {
			j := strings.IndexByte(s[start:], '<')
			if j < 0 || !strings.HasPrefix(s[start+j:], "</") {
				continue
			}
			end = start + j
		}
		for start < end && strings.IndexByte(" \t\r\n", s[start]) >= 0 {
			start++
		}
		for end > start && strings.IndexByte(" \t\r\n", s[end-1]) >= 0 {
			end--
		}
		if isPlaceholder(s[start:end]) {
			continue
		}
		out = append(out, Finding{RuleID: rule, Start: start, End: end})
	}
	return out
}

// findKeyValueAttribute handles `key="DbPassword" value="secret"` inside the
// tag attributes s[from:to].
func findKeyValueAttribute(s string, from, to int, out []Finding) []Finding {
	attrs := s[from:to]
	name := attributeValue(attrs, "key")
	if name == "" {
		name = attributeValue(attrs, "name")
	}
	rule, ok := sensitiveKeyRule(name)
	if !ok {
		return out
	}
	i := strings.Index(attrs, `value="`)
	if i < 0 {
		return out
	}
	start := from + i + len(`value="`)
	j := strings.IndexByte(s[start:to], '"')
	if j < 0 || isPlaceholder(s[start:start+j]) {
		return out
	}
	return append(out, Finding{RuleID: rule, Start: start, End: start + j})
}

// attributeValue returns the double-quoted value of attribute name in attrs.
func attributeValue(attrs, name string) string {
	for i := 0; ; {
		k := strings.Index(attrs[i:], name+`="`)
		if k < 0 {
			return ""
		}
		k += i
		i = k + len(name) + 2
		if k > 0 && isKeyChar(attrs[k-1]) {
			continue
		}
		j := strings.IndexByte(attrs[i:], '"')
		if j < 0 {
			return ""
		}
		return attrs[i : i+j]
	}
}

// findURLCredentials finds the password in URL user info:
// "https://user:pass@host", "postgres://app:pass@db:5432/x",
// "mongodb+srv://u:p@cluster", "redis://:pass@host".
func findURLCredentials(s string, out []Finding) []Finding {
	for i := 0; ; {
		k := strings.Index(s[i:], "://")
		if k < 0 {
			break
		}
		authStart := i + k + 3
		i = authStart
		if authStart < 4 || !isAlnum(s[authStart-4]) {
			continue // no scheme before "://"
		}
		authEnd := authStart
		for authEnd < len(s) && strings.IndexByte("/?#\"'<>` \t\r\n\\", s[authEnd]) < 0 {
			authEnd++
		}
		at := strings.LastIndexByte(s[authStart:authEnd], '@')
		if at < 0 {
			continue
		}
		at += authStart
		colon := strings.IndexByte(s[authStart:at], ':')
		if colon < 0 {
			continue
		}
		start := authStart + colon + 1
		if start >= at || isPlaceholder(s[start:at]) {
			continue
		}
		out = append(out, Finding{RuleID: ruleURLCredentials, Start: start, End: at})
		i = at
	}
	return out
}

// findBearerTokens finds "Bearer <token>" outside an Authorization header
// (for example in logs). The token must be at least 16 characters and
// contain a digit, so prose like "bearer authentication" is left alone.
func findBearerTokens(s string, out []Finding) []Finding {
	for i := 0; ; {
		k := indexFold(s[i:], "bearer")
		if k < 0 {
			break
		}
		k += i
		i = k + len("bearer")
		if k > 0 && isTokenChar(s[k-1]) {
			continue
		}
		start := i
		for start < len(s) && (s[start] == ' ' || s[start] == '\t') {
			start++
		}
		if start == i {
			continue
		}
		end, digits := start, 0
		for end < len(s) && (isTokenChar(s[end]) || strings.IndexByte(".~+/", s[end]) >= 0) {
			if isDigit(s[end]) {
				digits++
			}
			end++
		}
		for end < len(s) && s[end] == '=' {
			end++
		}
		if end-start < 16 || digits == 0 {
			continue
		}
		out = append(out, Finding{RuleID: ruleBearerToken, Start: start, End: end})
		i = end
	}
	return out
}

// indexFold is strings.Index for a lower-case ASCII word, ignoring case.
func indexFold(s, word string) int {
	first := word[0]
	set := string([]byte{first, first - ('a' - 'A')})
	for i := 0; ; {
		k := strings.IndexAny(s[i:], set)
		if k < 0 {
			return -1
		}
		k += i
		if k+len(word) <= len(s) && strings.EqualFold(s[k:k+len(word)], word) {
			return k
		}
		i = k + 1
	}
}

// findAIKeys finds OpenAI and Anthropic style keys: "sk-...", "sk-proj-...",
// "sk-svcacct-...", "sk-ant-api03-...". The body must be 20+ characters with
// both letters and digits.
func findAIKeys(s string, out []Finding) []Finding {
	for i := 0; ; {
		k := strings.Index(s[i:], "sk-")
		if k < 0 {
			break
		}
		k += i
		i = k + 3
		if k > 0 && (isTokenChar(s[k-1]) || s[k-1] == '.') {
			continue
		}
		end, digits, letters := i, 0, 0
		for end < len(s) && isTokenChar(s[end]) {
			if isDigit(s[end]) {
				digits++
			} else if isAlpha(s[end]) {
				letters++
			}
			end++
		}
		if end-i < 20 || digits == 0 || letters == 0 {
			continue
		}
		out = append(out, Finding{RuleID: ruleAIKey, Start: k, End: end})
		i = end
	}
	return out
}

// Shape of an agentmesh API key (pkg/apikey, which cannot be imported
// here: it needs the state database): "amk_", 8 and then 52 characters of
// lower-case base32 separated by '_'.
const (
	agentmeshKeyPrefix = "amk_"
	agentmeshKeyID     = 8
	agentmeshKeySecret = 52
)

// findAgentmeshKeys finds agentmesh's own API keys, so that a key a service
// caller echoes in parameters or an upstream returns in output is removed
// before the audit log or the model sees it.
func findAgentmeshKeys(s string, out []Finding) []Finding {
	for i := 0; ; {
		k := strings.Index(s[i:], agentmeshKeyPrefix)
		if k < 0 {
			break
		}
		k += i
		i = k + len(agentmeshKeyPrefix)
		if k > 0 && isTokenChar(s[k-1]) {
			continue
		}
		id := i + agentmeshKeyID
		end := id + 1 + agentmeshKeySecret
		if end > len(s) || s[id] != '_' || !isLowerBase32(s[i:id]) || !isLowerBase32(s[id+1:end]) {
			continue
		}
		for end < len(s) && isTokenChar(s[end]) {
			end++ // the whole token, also when something was appended
		}
		out = append(out, Finding{RuleID: ruleAgentmeshKey, Start: k, End: end})
		i = end
	}
	return out
}

func isLowerBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// findJWTs finds JSON Web Tokens: base64url header and payload that both
// start with `{"` ("eyJ"), and an optional signature.
func findJWTs(s string, out []Finding) []Finding {
	for i := 0; ; {
		k := strings.Index(s[i:], "eyJ")
		if k < 0 {
			break
		}
		k += i
		i = k + 3
		if k > 0 && (isTokenChar(s[k-1]) || s[k-1] == '.') {
			continue
		}
		end, ok := jwtSegment(s, k, true)
		if !ok || end >= len(s) || s[end] != '.' {
			continue
		}
		end, ok = jwtSegment(s, end+1, true)
		if !ok {
			continue
		}
		if end < len(s) && s[end] == '.' {
			end, _ = jwtSegment(s, end+1, false)
		}
		out = append(out, Finding{RuleID: ruleJWT, Start: k, End: end})
		i = end
	}
	return out
}

// jwtSegment scans one base64url segment of a JWT starting at from. When
// jsonPart is set the segment must start with "eyJ" and be 8+ characters.
func jwtSegment(s string, from int, jsonPart bool) (int, bool) {
	end := from
	for end < len(s) && isTokenChar(s[end]) {
		end++
	}
	if jsonPart && (end-from < 8 || !strings.HasPrefix(s[from:], "eyJ")) {
		return end, false
	}
	return end, true
}

// findPrivateKeys finds the body of PEM and OpenSSH private key blocks
// ("-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED ]PRIVATE KEY-----" ... "-----END
// ... PRIVATE KEY-----"), also when newlines are JSON-escaped. The BEGIN and
// END lines are kept. A block without an END line is redacted to the end of
// the text.
func findPrivateKeys(s string, out []Finding) []Finding {
	const begin, end = "-----BEGIN ", "-----END "
	for i := 0; ; {
		k := strings.Index(s[i:], begin)
		if k < 0 {
			break
		}
		k += i
		i = k + len(begin)
		close := strings.Index(s[i:min(len(s), i+80)], "-----")
		if close < 0 {
			continue
		}
		label := s[i : i+close]
		if !strings.HasSuffix(label, "PRIVATE KEY") && !strings.HasSuffix(label, "PRIVATE KEY BLOCK") {
			continue
		}
		start := i + close + len("-----")
		stop := len(s)
		if j := strings.Index(s[start:], end); j >= 0 {
			stop = start + j
		}
		if strings.TrimSpace(s[start:stop]) != "" {
			out = append(out, Finding{RuleID: rulePrivateKey, Start: start, End: stop})
		}
		i = stop
	}
	return out
}

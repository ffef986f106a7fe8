package redact

import "strings"

// Prose after a key: "How to reset your password: click Forgot password."
// has the shape of a password pair, but what follows the colon is the rest
// of a sentence, not a credential. proseValue tells the two apart for
// unquoted values (a quoted value is always taken for a secret: the quotes
// say it is one string, `password = "correct horse battery staple"`).
//
// The rules, in order, on at most the first proseWords words:
//
//  1. A word of the value that looks like a credential (credentialLike:
//     letters mixed with digits, symbols, mixed case) makes it a secret:
//     "hunter2", "Sup3r$ecret!", "Password: use Tr0ub4dor&3".
//  2. A first word that is a function word or an instruction ("click",
//     "see", "use", "the", "your", "is", "must", "required", ...) makes it
//     prose: "Password: must be at least 12 characters", "password: see the
//     vault", "password: required".
//  3. Otherwise a single word is a secret: "password: swordfish".
//  4. A run of two or more ordinary words (letters only) is prose if one of
//     them is a stop word, if it ends a sentence ('.', '!', '?') after three
//     words or more, or — when the pair is inline, not a "key: value" line —
//     if it has three words or more: "…API key: reading it shows redaction".
//     "password: correct horse battery" on a YAML line stays a secret.
//
// For an inline pair the value is one word (scanValueEnd stops at the
// blank); the words that follow it on the line are read as its context.
// Reading stops at a word that starts another pair ("api_key=x"): that one
// is judged on its own, so prose before it does not hide it.
//
// The check applies to "key: value" lines and inline pairs, not to
// connection strings ("Password=my pass;"), YAML block scalars or
// Authorization headers. It reads at most proseBytes bytes per separator,
// so the key/value scan stays linear.

// proseWords bounds the words proseValue reads, proseBytes the bytes.
const (
	proseWords = 8
	proseBytes = 256
)

// proseValue reports whether the unquoted value s[start:end] is the rest of
// a sentence rather than a credential. le is the end of the line; label is
// true when the value runs to the end of the line ("key: value" lines of
// YAML, INI and headers), false for an inline value of one word.
func proseValue(s string, start, end, le int, label bool) bool {
	limit := end
	if !label && end < le && (s[end] == ' ' || s[end] == '\t') {
		limit = le // read on: the words that follow the value
	}
	limit = min(limit, start+proseBytes)
	var words [proseWords]string
	n, inValue := 0, 0
	for i := start; i < limit && n < proseWords; {
		for i < limit && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		j := i
		for j < limit && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j > i {
			if startsPair(s[i:j]) {
				break // "see below; api_key=x": the next pair is judged on its own
			}
			words[n] = s[i:j]
			n++
			if i < end {
				inValue++
			}
		}
		i = j
	}
	if n == 0 {
		return false
	}
	for _, w := range words[:inValue] {
		if credentialLike(w) {
			return false
		}
	}
	if isStopWord(words[0]) {
		return true
	}
	if n == 1 {
		return false
	}
	m := 0
	for m < n && isPlainWord(words[m]) {
		m++
	}
	if m < 2 {
		return false
	}
	for _, w := range words[1:m] {
		if isStopWord(w) {
			return true
		}
	}
	if last := words[m-1]; m >= 3 && strings.IndexByte(".!?", last[len(last)-1]) >= 0 {
		return true
	}
	return !label && m >= 3
}

// startsPair reports whether the word w is the start of another key/value
// pair ("api_key=x", "token:"), which ends the run of words proseValue reads.
func startsPair(w string) bool {
	k := 0
	for k < len(w) && isKeyChar(w[k]) {
		k++
	}
	if k == 0 || k == len(w) {
		return false
	}
	switch w[k] {
	case '=':
		return k+1 < len(w) && w[k+1] != '='
	case ':':
		return k+1 == len(w) || w[k+1] == '='
	}
	return false
}

// trimWordPunct strips the quotes and brackets around a word and the
// punctuation after it: `"Forgot`, `password.`, `(rotate`.
func trimWordPunct(w string) string {
	for len(w) > 0 && strings.IndexByte("\"'`(<[{*_", w[0]) >= 0 {
		w = w[1:]
	}
	for len(w) > 0 && strings.IndexByte("\"'`)>]}.,;:!?*_", w[len(w)-1]) >= 0 {
		w = w[:len(w)-1]
	}
	return w
}

// isPlainWord reports whether w is an ordinary word: letters, optionally
// joined by '-' or '\” ("self-service", "don't"), lower case or with a
// capital first letter or all capitals, with punctuation around it.
func isPlainWord(w string) bool {
	t := trimWordPunct(w)
	if t == "" {
		return false
	}
	upper, lower := 0, 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z':
			lower++
		case 'A' <= c && c <= 'Z':
			if i > 0 && lower > 0 {
				return false // "iPhone", "dbPass"
			}
			upper++
		case (c == '-' || c == '\'') && i > 0 && i < len(t)-1:
		default:
			return false
		}
	}
	return upper <= 1 || lower == 0
}

// credentialLike reports whether w looks like a credential rather than a
// word: at least six characters, not a path or URL, and holding a symbol
// ("p@ssw0rd!", "Tr0ub4dor&3"), letters and digits in one part
// ("hunter2"; "12-character" is two parts) or a capital after a small
// letter ("dbPass").
func credentialLike(w string) bool {
	t := trimWordPunct(w)
	if len(t) < 6 || t[0] == '/' || t[0] == '~' || t[0] == '.' || strings.Contains(t, "://") {
		return false
	}
	letters, digits := false, false // in the current part
	lower := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case 'a' <= c && c <= 'z':
			letters, lower = true, true
		case 'A' <= c && c <= 'Z':
			if lower {
				return true
			}
			letters = true
		case '0' <= c && c <= '9':
			digits = true
		case strings.IndexByte("-_./:,'", c) >= 0: // joins parts of ordinary text
			letters, digits = false, false
		case c >= 0x80: // letters of other scripts
			letters = true
		default:
			return true // a symbol
		}
		if letters && digits {
			return true
		}
	}
	return false
}

// isStopWord reports whether w (with punctuation around it, any case) is a
// function word or an instruction word that starts or carries a sentence,
// never a credential on its own.
func isStopWord(w string) bool {
	t := trimWordPunct(w)
	if len(t) == 0 || len(t) > 12 {
		return false
	}
	var buf [12]byte
	for i := 0; i < len(t); i++ {
		c := t[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return stopWords[string(buf[:len(t)])]
}

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		a an the this that these those your you you'll you're yours my our their his her its it it's
		we they he she i me us them there here what which who whom whose how why when where
		is are was were be been being am has have had do does did can could will would shall should
		may might must need needs not isn't aren't don't doesn't can't cannot won't
		at least of to for from in on with without by as and or but if then than so via into onto
		about after before below above under over per like unless until also only just still
		click see use using used enter type reset change changed forgot forget forgotten set choose
		select open go read check confirm create update provide provided contact ask follow visit
		refer keep store stored never always please note make send sent get got given
		required optional expired expires invalid incorrect wrong missing empty too very more less
		minimum maximum most none same shown hidden any all each every some no yes`) {
		m[w] = true
	}
	return m
}()

package redact

import "strings"

// phiLabel is a label that announces a PHI value: "MRN", "Date of Birth",
// "member_id", "healthPlanNumber".
type phiLabel struct {
	// words are matched in any case; between two words there may be
	// nothing (camelCase, "birthdate"), or one of ' ', '_', '-', '.'.
	words []string
	kind  phiKind
	// suffix: whether an identifier word (Number, No, ID, #, ...) may or
	// must follow the words.
	suffix labelSuffix
	// bare: the value may follow after blanks alone, with no ':', '=' or
	// '#' ("MRN 12345678", "DOB 03/14/1962"). A label that ends in a
	// suffix word may always be bare.
	bare bool
	// minNameWords is, for name labels, how many capitalised words the
	// value needs.
	minNameWords int
}

type labelSuffix uint8

const (
	suffixNone labelSuffix = iota
	suffixOptional
	suffixRequired
)

// phiLabels, by the first letter of their first word.
var phiLabels = func() map[byte][]phiLabel {
	list := []phiLabel{
		{words: []string{"ssn"}, kind: kindSSN, suffix: suffixOptional, bare: true},
		{words: []string{"social", "security"}, kind: kindSSN, suffix: suffixOptional},
		{words: []string{"soc", "sec"}, kind: kindSSN, suffix: suffixOptional},
		{words: []string{"ss"}, kind: kindSSN, suffix: suffixRequired},

		{words: []string{"mrn"}, kind: kindMRN, suffix: suffixOptional, bare: true},
		{words: []string{"medical", "record"}, kind: kindMRN, suffix: suffixOptional},
		{words: []string{"med", "rec"}, kind: kindMRN, suffix: suffixOptional},
		{words: []string{"patient"}, kind: kindMRN, suffix: suffixRequired},
		{words: []string{"chart"}, kind: kindMRN, suffix: suffixRequired},

		{words: []string{"member"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"health", "plan"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"health", "plan", "beneficiary"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"subscriber"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"medicare"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"medicaid"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"beneficiary"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"insurance"}, kind: kindPlan, suffix: suffixRequired},
		{words: []string{"mbi"}, kind: kindPlan, bare: true},

		{words: []string{"d", "o", "b"}, kind: kindDOB, bare: true},
		{words: []string{"date", "of", "birth"}, kind: kindDOB, bare: true},
		{words: []string{"birth", "date"}, kind: kindDOB, bare: true},
		{words: []string{"birthday"}, kind: kindDOB, bare: true},
		{words: []string{"born"}, kind: kindDOB, bare: true},

		{words: []string{"patient"}, kind: kindName, bare: true, minNameWords: 2},
		{words: []string{"patient", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"full", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"first", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"last", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"given", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"family", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"surname"}, kind: kindName, minNameWords: 1},
		{words: []string{"member", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"subscriber", "name"}, kind: kindName, minNameWords: 1},
		{words: []string{"insured", "name"}, kind: kindName, minNameWords: 1},
	}
	m := map[byte][]phiLabel{}
	for _, l := range list {
		m[l.words[0][0]] = append(m[l.words[0][0]], l)
	}
	return m
}()

// suffixWords are the identifier words after a label ("Member ID",
// "Medical Record Number", "Medicare No.").
var suffixWords = []string{"number", "identifier", "num", "nbr", "no", "id"}

// diagnosisWords start a diagnosis context: an undotted ICD-10 code after
// one of them on the same line is a code ("Dx: I10", "ICD-10: E11").
var diagnosisWords = []string{"icd", "dx", "diagnosis", "diagnoses", "diag"}

// honorifics precede a person's name.
var honorifics = []string{"Mr", "Mrs", "Ms", "Miss", "Mx"}

// labels scans s word by word for PHI labels, honorifics and diagnosis
// words.
func (sc *phiScan) labels() {
	s := sc.s
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '[' && (strings.HasPrefix(s[i:], "[REDACTED:") || strings.HasPrefix(s[i:], "[WITHHELD:")) {
			// A marker's rule name ("icd10-diagnosis", "date-of-birth")
			// is no label.
			if end := strings.IndexByte(s[i:min(len(s), i+64)], ']'); end > 0 {
				i += end
			}
			continue
		}
		if !isAlpha(c) || !wordStart(s, i) {
			continue
		}
		if isUpper(c) {
			if end := sc.honorific(i); end > 0 {
				i = end - 1
				continue
			}
		}
		lower := c | 0x20
		for _, w := range diagnosisWords {
			if w[0] == lower {
				if end := matchWord(s, i, w); end > 0 && wordEnd(s, end) {
					ctxEnd := min(len(s), end+120)
					if nl := strings.IndexByte(s[end:ctxEnd], '\n'); nl >= 0 {
						ctxEnd = end + nl
					}
					sc.diagCtx = append(sc.diagCtx, [2]int{end, ctxEnd})
				}
			}
		}
		best := -1
		for _, l := range phiLabels[lower] {
			if end := sc.label(i, l); end > best {
				best = end
			}
		}
		if best > 0 {
			i = best - 1
		}
	}
}

// wordStart reports whether a word starts at i: after a non-letter, or at
// a lower-to-upper case change (camelCase).
func wordStart(s string, i int) bool {
	if i == 0 {
		return true
	}
	p := s[i-1]
	return !isAlnum(p) || p >= 'a' && p <= 'z' && isUpper(s[i])
}

// wordEnd reports whether a word ends at i: before a non-letter, or at a
// lower-to-upper case change.
func wordEnd(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	c := s[i]
	return !isAlpha(c) || isUpper(c) && i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z'
}

// matchWord matches w (lower case) at i in any case and returns its end.
func matchWord(s string, i int, w string) int {
	if i+len(w) > len(s) {
		return -1
	}
	for k := 0; k < len(w); k++ {
		if s[i+k]|0x20 != w[k] {
			return -1
		}
	}
	return i + len(w)
}

// matchWords matches a label's words at i, with at most one separator
// between two words, and returns the end of the last word.
func matchWords(s string, i int, words []string) int {
	k := i
	for n, w := range words {
		if n > 0 && k < len(s) && strings.IndexByte(" _-.", s[k]) >= 0 {
			k++
		}
		end := matchWord(s, k, w)
		if end < 0 {
			return -1
		}
		k = end
	}
	if k < len(s) && s[k] == '.' && words[len(words)-1] == "b" {
		k++ // D.O.B.
	}
	return k
}

// label tries label l at i and, when it is followed by a value of its
// kind, records it; it returns the end of what it consumed or -1.
func (sc *phiScan) label(i int, l phiLabel) int {
	s := sc.s
	k := matchWords(s, i, l.words)
	if k < 0 {
		return -1
	}
	suffixed := false
	if l.suffix != suffixNone {
		if end, ok := labelSuffixAt(s, k); ok {
			k, suffixed = end, true
		} else if l.suffix == suffixRequired {
			return -1
		}
	}
	if !suffixed && !wordEnd(s, k) {
		return -1
	}
	j, separated := valueStart(s, k)
	if !separated && !l.bare && !suffixed {
		return -1
	}
	if l.kind == kindName {
		if end := parseName(s, j, l.minNameWords); end > 0 {
			sc.anchors = append(sc.anchors, [2]int{j, end})
			return end
		}
		return -1
	}
	if l.kind == kindDOB && !separated {
		if end := matchWord(s, j, "on"); end > 0 && end < len(s) && s[end] == ' ' {
			j = end + 1
		}
	}
	end := phiValueEnd(s, j, l.kind)
	if end < 0 {
		return -1
	}
	sc.add(l.kind.rule(), j, end)
	return end
}

// labelSuffixAt matches an identifier word or '#' after a label at k
// ("Member ID", "MRN #", "Medicare No.", "healthPlanNumber").
func labelSuffixAt(s string, k int) (int, bool) {
	j := k
	for j < len(s) && j-k < 2 && (s[j] == ' ' || s[j] == '_' || s[j] == '-' || s[j] == '.') {
		j++
	}
	if j < len(s) && s[j] == '#' {
		return j + 1, true
	}
	if j-k > 1 {
		return k, false // two separators: not one label
	}
	for _, w := range suffixWords {
		end := matchWord(s, j, w)
		if end < 0 {
			continue
		}
		if w == "no" && end < len(s) && s[end] == '.' {
			end++
		} else if !wordEnd(s, end) {
			continue
		}
		if end < len(s) && s[end] == '#' {
			end++
		}
		return end, true
	}
	return k, false
}

// valueStart skips what separates a label from its value: blanks, the
// closing and opening quotes of a key and its value (escaped any number of
// times), and one or two of ':', '=', '#'. separated reports whether one of
// those was there. It does not cross a line break.
func valueStart(s string, k int) (j int, separated bool) {
	j = skipQuote(s, skipBlanks(s, k))
	j = skipBlanks(s, j)
	for n := 0; n < 2 && j < len(s) && (s[j] == ':' || s[j] == '=' || s[j] == '#'); n++ {
		j++
		separated = true
	}
	j = skipBlanks(s, j)
	if separated {
		j = skipQuote(s, j)
	}
	return j, separated
}

func skipBlanks(s string, j int) int {
	for k := j; k < len(s) && k-j < 16; k++ {
		if s[k] != ' ' && s[k] != '\t' {
			return k
		}
	}
	return min(j+16, len(s))
}

// skipQuote skips a quote, escaped any number of times (`"`, `\"`,
// `\\\"`, `'`).
func skipQuote(s string, j int) int {
	k := j
	for k < len(s) && k-j < 16 && s[k] == '\\' {
		k++
	}
	if k < len(s) && (s[k] == '"' || s[k] == '\'') {
		return k + 1
	}
	return j
}

// honorific matches "Mr. Name", "Mrs Name", ... at i and records the name.
func (sc *phiScan) honorific(i int) int {
	s := sc.s
	for _, h := range honorifics {
		if !strings.HasPrefix(s[i:], h) {
			continue
		}
		k := i + len(h)
		if k < len(s) && s[k] == '.' {
			k++
		}
		if k >= len(s) || s[k] != ' ' {
			continue
		}
		if end := parseName(s, k+1, 1); end > 0 {
			sc.anchors = append(sc.anchors, [2]int{i, end})
			return end
		}
	}
	return -1
}

// parseName parses a person's name at j: 1-4 capitalised words (O'Neil,
// Smith-Jones, an initial "J."), optionally "Last, First". It returns the
// end when there are at least minWords words, else -1.
func parseName(s string, j, minWords int) int {
	words, k, end := 0, j, -1
	comma := false
	for words < 4 && k < len(s) {
		w := nameWordEnd(s, k)
		if w < 0 {
			break
		}
		words++
		end = w
		switch {
		case w+1 < len(s) && s[w] == ' ' && isUpper(s[w+1]):
			k = w + 1
		case !comma && w+2 < len(s) && s[w] == ',' && s[w+1] == ' ' && isUpper(s[w+2]) && words == 1:
			comma = true
			k = w + 2
		default:
			k = len(s)
		}
	}
	if words < minWords {
		return -1
	}
	return end
}

// nameWordEnd returns the end of a name word at k: an upper-case letter
// followed by lower-case letters (with ' or - before another letter), or
// an initial "J.".
func nameWordEnd(s string, k int) int {
	if k >= len(s) || !isUpper(s[k]) {
		return -1
	}
	m := k + 1
	if m < len(s) && s[m] == '.' {
		return m + 1 // an initial
	}
	for m < len(s) && m-k < 40 {
		c := s[m]
		if c >= 'a' && c <= 'z' {
			m++
			continue
		}
		if (c == '\'' || c == '-') && m+1 < len(s) && isAlpha(s[m+1]) {
			m += 2
			continue
		}
		break
	}
	if m-k < 2 || m < len(s) && (isAlnum(s[m]) || s[m] == '_') {
		return -1
	}
	return m
}

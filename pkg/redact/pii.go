package redact

import (
	"strings"
)

// Rule IDs of the personal-data detectors.
const (
	ruleEmail      = "email"
	ruleCreditCard = "credit-card"
	ruleIBAN       = "iban"
)

// findEmails finds e-mail addresses. Excluded: the user part of URL
// authorities ("postgres://user:pass@host", handled as a credential),
// "git@host:org/repo" SSH remotes, and "name@2x.png"-style file names.
func findEmails(s string, out []Finding) []Finding {
	for i := 0; ; {
		k := strings.IndexByte(s[i:], '@')
		if k < 0 {
			break
		}
		at := i + k
		i = at + 1
		start := at
		for start > 0 && at-start < 64 && isEmailLocalChar(s[start-1]) {
			start--
		}
		for start < at && s[start] == '.' {
			start++
		}
		if start == at {
			continue
		}
		end, ok := scanEmailDomain(s, at+1)
		if !ok {
			continue
		}
		if s[start:at] == "git" || inURLAuthority(s, start) {
			continue
		}
		out = append(out, Finding{RuleID: ruleEmail, Start: start, End: end})
		i = end
	}
	return out
}

func isEmailLocalChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("._%+-", c) >= 0
}

// fileExtensions are "top-level domains" that are really file names such as
// "icon@2x.png".
var fileExtensions = map[string]bool{
	"png": true, "jpg": true, "jpeg": true, "gif": true, "svg": true, "webp": true,
	"ico": true, "bmp": true, "pdf": true, "js": true, "ts": true, "css": true,
	"json": true, "txt": true, "md": true, "html": true,
}

// scanEmailDomain scans the domain after an '@' at from and returns its end.
// The domain needs at least two labels and an alphabetic top-level label.
func scanEmailDomain(s string, from int) (int, bool) {
	end := from
	for end < len(s) && end-from < 253 && (isAlnum(s[end]) || s[end] == '.' || s[end] == '-') {
		end++
	}
	for end > from && (s[end-1] == '.' || s[end-1] == '-') {
		end--
	}
	domain := s[from:end]
	dot := strings.LastIndexByte(domain, '.')
	if dot <= 0 || strings.Contains(domain, "..") || domain[0] == '-' || domain[0] == '.' {
		return 0, false
	}
	tld := domain[dot+1:]
	if len(tld) < 2 || len(tld) > 24 || fileExtensions[strings.ToLower(tld)] {
		return 0, false
	}
	for i := 0; i < len(tld); i++ {
		if !isAlpha(tld[i]) {
			return 0, false
		}
	}
	return end, true
}

// inURLAuthority reports whether position i lies in the authority part of a
// URL ("scheme://...here...") on the same token.
func inURLAuthority(s string, i int) bool {
	tokenStart := i
	for tokenStart > 0 && i-tokenStart < 512 && strings.IndexByte(" \t\r\n\"'<>`", s[tokenStart-1]) < 0 {
		tokenStart--
	}
	token := s[tokenStart:i]
	k := strings.LastIndex(token, "://")
	return k >= 0 && strings.IndexAny(token[k+3:], "/?#") < 0
}

// findCardNumbers finds payment card numbers: 13-19 digits, optionally in
// groups separated by single spaces or dashes, with a known card-network
// prefix and length, and a valid Luhn check digit. The prefix check keeps
// 19-digit nanosecond timestamps and snowflake IDs (which pass Luhn one time
// in ten) from being redacted.
func findCardNumbers(s string, out []Finding) []Finding {
	var groups [][2]int // digit groups of the current run: [start, end)
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// A run of digit groups separated by single ' ' or '-'.
		groups = groups[:0]
		runStart := i
		for {
			gs := i
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			groups = append(groups, [2]int{gs, i})
			if i+1 < len(s) && (s[i] == ' ' || s[i] == '-') && isDigit(s[i+1]) {
				i++
				continue
			}
			break
		}
		if !cardRunBoundaryOK(s, runStart, i) {
			continue
		}
		out = cardsInRun(s, groups, out)
	}
	return out
}

// cardRunBoundaryOK rejects digit runs glued to letters or underscores, or
// part of a decimal fraction ("0.4111...").
func cardRunBoundaryOK(s string, start, end int) bool {
	if start > 0 {
		c := s[start-1]
		if isAlpha(c) || c == '_' || (c == '.' && start > 1 && isDigit(s[start-2])) {
			return false
		}
	}
	if end < len(s) {
		c := s[end]
		if isAlpha(c) || c == '_' || (c == '.' && end+1 < len(s) && isDigit(s[end+1])) {
			return false
		}
	}
	return true
}

// cardsInRun finds card numbers made of whole consecutive groups of a run.
// A run without separators must be a card number as a whole. Printed card
// numbers are grouped 4-4-4-4, 4-6-5, 4-6-4 or 4-4-4-4-3, so every group but
// the last must have 4 to 6 digits; "0 1 1 2 3 5 8 13 21 ..." is no card.
func cardsInRun(s string, groups [][2]int, out []Finding) []Finding {
	var digits [19]byte
	for first := 0; first < len(groups); {
		bestEnd := -1
		n := 0
		for last := first; last < len(groups); last++ {
			g := groups[last]
			if n+g[1]-g[0] > len(digits) {
				break
			}
			if last > first {
				if prev := groups[last-1]; prev[1]-prev[0] < 4 || prev[1]-prev[0] > 6 {
					break
				}
			}
			n += copy(digits[n:], s[g[0]:g[1]])
			if len(groups) == 1 && n < 13 {
				break
			}
			if n >= 13 && cardPrefixOK(digits[:n]) && luhnValid(digits[:n]) {
				bestEnd = last
			}
		}
		if len(groups) == 1 && n != groups[0][1]-groups[0][0] {
			break // a single run longer than 19 digits is not a card
		}
		if bestEnd >= 0 {
			out = append(out, Finding{RuleID: ruleCreditCard, Start: groups[first][0], End: groups[bestEnd][1]})
			first = bestEnd + 1
			continue
		}
		first++
	}
	return out
}

// luhnValid reports whether the decimal digits pass the Luhn (mod 10) check.
func luhnValid(digits []byte) bool {
	if len(digits) < 2 {
		return false
	}
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// cardPrefixOK reports whether the number has the prefix and length of a
// card network (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay,
// Maestro).
func cardPrefixOK(d []byte) bool {
	n := len(d)
	num := func(k int) int {
		v := 0
		for _, c := range d[:k] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	p2, p3, p4 := num(2), num(3), num(4)
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011 || p2 == 65 || p3 >= 644 && p3 <= 649: // Discover
		return n >= 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14
	case p2 == 62: // UnionPay
		return n >= 16
	case p2 == 50, p2 >= 56 && p2 <= 69: // Maestro
		return true
	}
	return false
}

// ibanLengths is the IBAN length of each country in the IBAN registry.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
	"DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
	"FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
	"LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
	"MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
	"SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
	"YE": 30,
}

// findIBANs finds IBANs written compactly or in groups separated by single
// spaces, with the registered length for the country and a valid mod-97
// check.
func findIBANs(s string, out []Finding) []Finding {
	var compact [34]byte
	for i := 0; i+4 <= len(s); i++ {
		if !isUpper(s[i]) || !isUpper(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '_') {
			continue
		}
		want := ibanLengths[s[i:i+2]]
		if want == 0 {
			continue
		}
		n, j := 0, i
		for j < len(s) && n < want {
			c := s[j]
			switch {
			case isUpper(c) || isDigit(c):
				compact[n] = c
				n++
				j++
				continue
			case c == ' ' && n > 0 && j+1 < len(s) && (isUpper(s[j+1]) || isDigit(s[j+1])):
				j++
				continue
			}
			break
		}
		if n != want || (j < len(s) && (isAlnum(s[j]) || s[j] == '_')) {
			continue
		}
		if ibanValid(compact[:n]) {
			out = append(out, Finding{RuleID: ruleIBAN, Start: i, End: j})
			i = j - 1
		}
	}
	return out
}

// ibanValid reports whether a compact upper-case IBAN has the registered
// length for its country and passes the ISO 13616 mod-97 check.
func ibanValid(iban []byte) bool {
	if len(iban) < 15 || len(iban) > 34 || ibanLengths[string(iban[:2])] != len(iban) {
		return false
	}
	rem := 0
	for k := 0; k < len(iban); k++ {
		c := iban[(k+4)%len(iban)] // move the first four characters to the end
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

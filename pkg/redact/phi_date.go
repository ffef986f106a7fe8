package redact

// parseDate parses a calendar date at j and returns its end, or -1:
//
//	1962-03-14  1962/03/14                 year first
//	03/14/1962  3/14/62  14.03.1962  03-14-1962   month and day in either order
//	March 14, 1962  Mar. 14 1962  Sept 14th, 1962
//	14 March 1962  14-Mar-1962  14 Mar, 1962
//
// Years have four digits (1880-2099) or, after a day and month, two.
// The date must end there: "1962-03-14T08:00" is a date followed by a time,
// "1962-03-145" is not a date.
func parseDate(s string, j int) int {
	if j >= len(s) {
		return -1
	}
	var end int
	if isDigit(s[j]) {
		end = numericDate(s, j)
		if end < 0 {
			end = dayMonthNameDate(s, j)
		}
	} else {
		end = monthNameDate(s, j)
	}
	if end < 0 {
		return -1
	}
	if end < len(s) && (isDigit(s[end]) || isAlpha(s[end]) && !(s[end] == 'T' && end+1 < len(s) && isDigit(s[end+1]))) {
		return -1
	}
	return end
}

// digitsAt returns the value and end of a run of 1..max digits at j.
func digitsAt(s string, j, max int) (v, end int) {
	end = j
	for end < len(s) && end-j < max && isDigit(s[end]) {
		v = v*10 + int(s[end]-'0')
		end++
	}
	if end == j || end < len(s) && isDigit(s[end]) {
		return 0, -1
	}
	return v, end
}

func numericDate(s string, j int) int {
	a, e1 := digitsAt(s, j, 4)
	if e1 < 0 || e1+1 >= len(s) {
		return -1
	}
	sep := s[e1]
	if sep != '-' && sep != '/' && sep != '.' {
		return -1
	}
	b, e2 := digitsAt(s, e1+1, 2)
	if e2 < 0 || e2+1 >= len(s) || s[e2] != sep {
		return -1
	}
	c, e3 := digitsAt(s, e2+1, 4)
	if e3 < 0 {
		return -1
	}
	if e1-j == 4 { // year first
		if e3-e2-1 > 2 || !validYear(a) || !validMonthDay(b, c) {
			return -1
		}
		return e3
	}
	if e1-j > 2 {
		return -1
	}
	switch e3 - e2 - 1 {
	case 4:
		if !validYear(c) {
			return -1
		}
	case 2:
	default:
		return -1
	}
	if !validMonthDay(a, b) && !validMonthDay(b, a) {
		return -1
	}
	return e3
}

func validYear(y int) bool { return y >= 1880 && y <= 2099 }

func validMonthDay(m, d int) bool { return m >= 1 && m <= 12 && d >= 1 && d <= 31 }

var monthNames = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}

// monthAt matches a month name or its abbreviation (at least three letters,
// "Sept" too) at j, followed by an optional '.', and returns its end.
func monthAt(s string, j int) int {
	k := j
	for k < len(s) && k-j < 10 && isAlpha(s[k]) {
		k++
	}
	n := k - j
	if n < 3 || k < len(s) && isAlpha(s[k]) {
		return -1
	}
	for _, m := range monthNames {
		if n > len(m) {
			continue
		}
		ok := true
		for i := 0; i < n; i++ {
			if s[j+i]|0x20 != m[i] {
				ok = false
				break
			}
		}
		if ok && (n == 3 || n == len(m) || m == "september" && n == 4) {
			if k < len(s) && s[k] == '.' && n < len(m) {
				k++
			}
			return k
		}
	}
	return -1
}

// dayAt parses a day of the month (1-31) with an optional ordinal suffix.
func dayAt(s string, j int) (int, int) {
	d, k := digitsAt(s, j, 2)
	if k < 0 || d < 1 || d > 31 {
		return 0, -1
	}
	if k+2 <= len(s) {
		switch s[k : k+2] {
		case "st", "nd", "rd", "th":
			k += 2
		}
	}
	return d, k
}

// monthNameDate: "March 14, 1962", "Mar 14 1962", "Mar. 14th, 1962".
func monthNameDate(s string, j int) int {
	k := monthAt(s, j)
	if k < 0 || k >= len(s) || s[k] != ' ' {
		return -1
	}
	_, k = dayAt(s, k+1)
	if k < 0 {
		return -1
	}
	if k < len(s) && s[k] == ',' {
		k++
	}
	if k >= len(s) || s[k] != ' ' {
		return -1
	}
	y, e := digitsAt(s, k+1, 4)
	if e < 0 || e-k-1 != 4 || !validYear(y) {
		return -1
	}
	return e
}

// dayMonthNameDate: "14 March 1962", "14-Mar-1962", "14 Mar, 1962".
func dayMonthNameDate(s string, j int) int {
	_, k := dayAt(s, j)
	if k < 0 || k >= len(s) || s[k] != ' ' && s[k] != '-' {
		return -1
	}
	sep := s[k]
	k = monthAt(s, k+1)
	if k < 0 || k >= len(s) {
		return -1
	}
	if s[k] == ',' && sep == ' ' {
		k++
	}
	if k >= len(s) || s[k] != sep {
		return -1
	}
	y, e := digitsAt(s, k+1, 4)
	if e < 0 || e-k-1 != 4 || !validYear(y) {
		return -1
	}
	return e
}

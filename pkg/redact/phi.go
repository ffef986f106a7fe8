package redact

import (
	"sort"
	"strings"
)

// Protected health information (HIPAA, 45 CFR 164.514(b)(2)): detectors
// for the identifiers and health data that tool output of a health-care
// deployment carries in recognisable form. They are off unless Options.PHI
// is set (agentmesh turns them on with `compliance: [hipaa]` or
// `redaction.phi: true`).
//
// To keep false positives low, most of them need a label that says what a
// value is; the value must then also have the right shape:
//
//   - us-ssn: a US Social Security number, 3-2-4 digits with dashes
//     anywhere, or after a label (SSN, Social Security Number, SS#) also with
//     spaces or none; area 001-899 but not 666, group 01-99, serial
//     0001-9999 (the numbers the SSA never issues are left alone).
//   - date-of-birth: a date after DOB, D.O.B., Date of Birth, Birth Date,
//     Birthdate, Birthday or "born (on)": 1962-03-14, 03/14/1962, 3/14/62,
//     14.03.1962, March 14, 1962, 14 Mar 1962, 14-Mar-1962.
//   - medical-record-number: after MRN, Medical Record (Number|No|#),
//     Med Rec (No|#), Patient ID/Number: 4-20 letters and digits (dashes
//     between them), at least 4 digits.
//   - health-plan-number: after Member ID/Number/#, Health Plan ID/Number/#,
//     Subscriber ID, Medicare/Medicaid ID/Number, MBI, Beneficiary ID,
//     Insurance ID: 5-24 letters and digits, at least 3 digits.
//   - icd10-diagnosis: an ICD-10-CM code (E11.9, I10, S72.001A) near a
//     person: within 200 bytes, and no blank line apart, of a person's name
//     (Mr./Mrs./Ms./Mx. Name, or after Patient, Patient Name, Full Name,
//     First/Last Name, Member Name, ...) or of one of the identifiers above.
//     A code without a dot needs a diagnosis label on its line (ICD, ICD-10,
//     Dx, Diagnosis). A code list with no person in it is not PHI.
//
// Labels match in any case and as key names (mrn, date_of_birth,
// dateOfBirth, member-id, "medicalRecordNumber"), followed by ':', '=' or
// '#' and optional quotes; acronyms and labels ending in Number/No/ID/# may
// also be followed by the value directly ("MRN 12345678"). Tables (CSV,
// TSV, '|' or ';' separated) whose header names such a column are read
// column by column (phi_table.go).
//
// Names themselves are not redacted: a name cannot be told from other
// capitalised words without a model. Removing the identifiers and the
// diagnosis breaks the link between a person and their health data.

// Rule IDs of the PHI detectors.
const (
	ruleSSN         = "us-ssn"
	ruleDateOfBirth = "date-of-birth"
	ruleMRN         = "medical-record-number"
	ruleHealthPlan  = "health-plan-number"
	ruleICD10       = "icd10-diagnosis"
)

// PHIRules are the rule IDs of the protected health information detectors,
// sorted.
func PHIRules() []string {
	return []string{ruleDateOfBirth, ruleHealthPlan, ruleICD10, ruleMRN, ruleSSN}
}

// IsPHIRule reports whether a finding's rule ID is one of the protected
// health information detectors'.
func IsPHIRule(id string) bool {
	switch id {
	case ruleSSN, ruleDateOfBirth, ruleMRN, ruleHealthPlan, ruleICD10:
		return true
	}
	return false
}

// phiKind is what a label or a table column announces.
type phiKind uint8

const (
	kindNone phiKind = iota
	kindSSN
	kindMRN
	kindPlan
	kindDOB
	kindName      // a person's name (qualified: patient, full name, ...)
	kindDiagnosis // ICD-10 / diagnosis codes
)

func (k phiKind) rule() string {
	switch k {
	case kindSSN:
		return ruleSSN
	case kindMRN:
		return ruleMRN
	case kindPlan:
		return ruleHealthPlan
	case kindDOB:
		return ruleDateOfBirth
	}
	return ""
}

// phiValueEnd parses the value of a kind at j (after its label) and returns
// its end, or -1 when what is there is not such a value.
func phiValueEnd(s string, j int, k phiKind) int {
	switch k {
	case kindSSN:
		return parseSSN(s, j, true)
	case kindMRN:
		return parseHealthID(s, j, 4, 20, 4)
	case kindPlan:
		return parseHealthID(s, j, 5, 24, 3)
	case kindDOB:
		return parseDate(s, j)
	}
	return -1
}

// phiScan collects PHI findings over one text, and the spans that stand
// for a person (names, identifiers), which decide whether a diagnosis code
// is about someone.
type phiScan struct {
	s       string
	found   []Finding
	anchors [][2]int // person spans: names and identifier findings
	diagCtx [][2]int // spans after a diagnosis label, to the end of its line
	tableDx [][2]int // diagnosis cells of table rows about a person
}

// findPHI finds protected health information in s.
func findPHI(s string, out []Finding) []Finding {
	if len(s) < 3 {
		return out
	}
	sc := phiScan{s: s}
	sc.unlabelledSSNs()
	sc.labels()
	sc.tables()
	sc.diagnoses()
	return append(out, sc.found...)
}

func (sc *phiScan) add(rule string, start, end int) {
	sc.found = append(sc.found, Finding{RuleID: rule, Start: start, End: end})
	sc.anchors = append(sc.anchors, [2]int{start, end})
}

// unlabelledSSNs finds ddd-dd-dddd anywhere: the dashed form is what
// Social Security numbers look like in documents, and the validity rules
// leave out most other 3-2-4 numbers.
func (sc *phiScan) unlabelledSSNs() {
	s := sc.s
	for i := 0; i+11 <= len(s); i++ {
		if !isDigit(s[i]) {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || strings.IndexByte("-_./", s[i-1]) >= 0) {
			for i < len(s) && isDigit(s[i]) {
				i++
			}
			continue
		}
		if s[i+3] == '-' {
			if end := parseSSN(s, i, false); end > 0 {
				sc.add(ruleSSN, i, end)
				i = end
				continue
			}
		}
		for i+1 < len(s) && isDigit(s[i+1]) {
			i++
		}
	}
}

// parseSSN parses a Social Security number at j: ddd-dd-dddd, and when
// labelled also ddd dd dddd or ddddddddd. It returns the end or -1.
func parseSSN(s string, j int, labelled bool) int {
	if j+9 > len(s) {
		return -1
	}
	var d [9]byte
	n, k := 0, j
	var sep byte
	for n < 9 && k < len(s) {
		c := s[k]
		switch {
		case isDigit(c):
			d[n] = c
			n++
			k++
			continue
		case (n == 3 || n == 5) && (c == '-' || c == ' '):
			if n == 3 {
				sep = c
			} else if c != sep {
				return -1
			}
			k++
			if k < len(s) && isDigit(s[k]) {
				continue
			}
		}
		return -1
	}
	if n != 9 {
		return -1
	}
	if sep == 0 && !labelled || sep == ' ' && !labelled {
		return -1
	}
	if sep != 0 && k-j != 11 {
		return -1 // "123-456789": separators in one place only
	}
	if k < len(s) && (isAlnum(s[k]) || s[k] == '_' || (s[k] == '-' || s[k] == '.') && k+1 < len(s) && isDigit(s[k+1])) {
		return -1
	}
	area := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	group := int(d[3]-'0')*10 + int(d[4]-'0')
	serial := string(d[5:9])
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == "0000" {
		return -1
	}
	return k
}

// parseHealthID parses a record or plan identifier at j: letters and
// digits, single dashes between them, minLen..maxLen of them, at least
// minDigits digits. Words ("pending", "unknown"), masks (XXXXXX1234) and
// markers ("[REDACTED:...]") are not identifiers.
func parseHealthID(s string, j, minLen, maxLen, minDigits int) int {
	n, digits, k := 0, 0, j
	for k < len(s) && n <= maxLen {
		c := s[k]
		if isAlnum(c) {
			n++
			if isDigit(c) {
				digits++
			}
			k++
			continue
		}
		if c == '-' && k > j && k+1 < len(s) && isAlnum(s[k+1]) {
			k++
			continue
		}
		break
	}
	if n < minLen || n > maxLen || digits < minDigits || strings.Contains(strings.ToUpper(s[j:k]), "XXX") {
		return -1 // XXXXXX1234: masked already
	}
	if k < len(s) && (s[k] == '_' || s[k] == '@' || s[k] == '.' && k+1 < len(s) && isAlnum(s[k+1])) {
		return -1 // part of a file name, an address or a decimal
	}
	return k
}

// diagnoses adds the ICD-10-CM codes that are about a person: near an
// anchor, or in a table row about someone.
func (sc *phiScan) diagnoses() {
	s := sc.s
	if len(sc.anchors) == 0 {
		return
	}
	sort.Slice(sc.anchors, func(i, j int) bool { return sc.anchors[i][0] < sc.anchors[j][0] })
	for _, cell := range sc.tableDx {
		for i := cell[0]; i < cell[1]; i++ {
			if end := parseICD10(s, i, true); end > 0 && end <= cell[1] {
				sc.found = append(sc.found, Finding{RuleID: ruleICD10, Start: i, End: end})
				i = end
			}
		}
	}
	for i := 0; i+3 <= len(s); i++ {
		c := s[i]
		if c < 'A' || c > 'Z' || c == 'U' || i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.' || s[i-1] == '_') {
			continue
		}
		end := parseICD10(s, i, sc.inDiagnosisContext(i))
		if end < 0 {
			continue
		}
		if sc.nearPerson(i, end) {
			sc.found = append(sc.found, Finding{RuleID: ruleICD10, Start: i, End: end})
		}
		i = end - 1
	}
}

// parseICD10 parses an ICD-10-CM code at i: a letter (not U), a digit, a
// digit or A/B, then a dot and 1-4 letters or digits (S72.001A, T36.0X1A).
// The dot may be missing (I10) only when undotted is set (a diagnosis label
// or column). It returns the end or -1.
func parseICD10(s string, i int, undotted bool) int {
	if i+3 > len(s) {
		return -1
	}
	c0, c1, c2 := s[i], s[i+1], s[i+2]
	if c0 < 'A' || c0 > 'Z' || c0 == 'U' || !isDigit(c1) || !(isDigit(c2) || c2 == 'A' || c2 == 'B') {
		return -1
	}
	k := i + 3
	if k+1 < len(s) && s[k] == '.' && (isDigit(s[k+1]) || isUpper(s[k+1])) {
		m := k + 1
		for m < len(s) && m-k-1 < 4 && (isDigit(s[m]) || isUpper(s[m])) {
			m++
		}
		if m < len(s) && (isAlnum(s[m]) || s[m] == '_') {
			return -1
		}
		if m < len(s) && s[m] == '.' && m+1 < len(s) && isAlnum(s[m+1]) {
			return -1 // a version or an address: E11.9.2
		}
		return m
	}
	if !undotted || k < len(s) && (isAlnum(s[k]) || s[k] == '_' || s[k] == '.' && k+1 < len(s) && isAlnum(s[k+1])) {
		return -1
	}
	return k
}

// inDiagnosisContext reports whether offset i follows a diagnosis label on
// its line.
func (sc *phiScan) inDiagnosisContext(i int) bool {
	// Contexts start in increasing order and are at most 120 bytes long.
	k := sort.Search(len(sc.diagCtx), func(n int) bool { return sc.diagCtx[n][0] > i })
	for n := k - 1; n >= 0 && sc.diagCtx[n][0] >= i-120; n-- {
		if i < sc.diagCtx[n][1] {
			return true
		}
	}
	return false
}

// phiNear is how far, in bytes, a diagnosis code may be from a name or an
// identifier and still be about that person.
const phiNear = 200

// nearPerson reports whether an anchor lies within phiNear bytes of
// [start, end) with no blank line between them.
func (sc *phiScan) nearPerson(start, end int) bool {
	s := sc.s
	k := sort.Search(len(sc.anchors), func(i int) bool { return sc.anchors[i][0] >= end })
	if k < len(sc.anchors) {
		a := sc.anchors[k]
		if a[0]-end <= phiNear && !strings.Contains(s[end:a[0]], "\n\n") && !strings.Contains(s[end:a[0]], "\r\n\r\n") {
			return true
		}
	}
	for j := k - 1; j >= 0 && j >= k-8; j-- {
		a := sc.anchors[j]
		if a[1] > start {
			return true // overlaps: a table cell or a labelled value holding the code
		}
		if start-a[1] <= phiNear && !strings.Contains(s[a[1]:start], "\n\n") && !strings.Contains(s[a[1]:start], "\r\n\r\n") {
			return true
		}
	}
	return false
}

// phiNumberRule is the PHI rule a member name gives a JSON number
// ({"mrn": 12345678}, {"ssn": 123456789}), or "": strings are scanned with
// their names as text, numbers are not, so this reads "name: number" the
// way the labels do.
func phiNumberRule[K string | []byte, N string | []byte](name K, number N) string {
	if len(name) == 0 || len(name) > 64 || len(number) > 32 {
		return ""
	}
	text := string(name) + ": " + string(number)
	sc := phiScan{s: text}
	sc.labels()
	for _, f := range sc.found {
		if f.Start == len(name)+2 && f.End == len(text) {
			return f.RuleID
		}
	}
	return ""
}

package redact

import "strings"

// Tables: a CSV, TSV, '|' or ';' separated header that names a PHI column
// (mrn, dob, ssn, member_id, icd10, patient_name, ...) makes the cells of
// that column in the rows below PHI when they have the column's shape. Rows
// continue while lines split into as many fields as the header. A
// diagnosis column's codes are PHI in rows about a person: rows with a
// (qualified) name cell or an identifier cell.

// phiColumns maps a normalised header (lower case, letters and digits only)
// to what the column holds.
var phiColumns = map[string]phiKind{
	"ssn": kindSSN, "socialsecuritynumber": kindSSN, "socialsecurity": kindSSN, "socialsecurityno": kindSSN,
	"mrn": kindMRN, "medicalrecordnumber": kindMRN, "medicalrecord": kindMRN, "medicalrecordno": kindMRN,
	"medrecno": kindMRN, "patientid": kindMRN, "patientnumber": kindMRN, "chartnumber": kindMRN,
	"memberid": kindPlan, "membernumber": kindPlan, "memberno": kindPlan, "healthplanid": kindPlan,
	"healthplannumber": kindPlan, "healthplanno": kindPlan, "subscriberid": kindPlan, "subscribernumber": kindPlan,
	"medicareid": kindPlan, "medicarenumber": kindPlan, "medicaidid": kindPlan, "medicaidnumber": kindPlan,
	"mbi": kindPlan, "beneficiaryid": kindPlan, "insuranceid": kindPlan, "insurancenumber": kindPlan,
	"dob": kindDOB, "dateofbirth": kindDOB, "birthdate": kindDOB, "birthday": kindDOB,
	"patient": kindName, "patientname": kindName, "fullname": kindName, "firstname": kindName,
	"lastname": kindName, "givenname": kindName, "familyname": kindName, "surname": kindName,
	"membername": kindName, "subscribername": kindName, "insuredname": kindName,
	"icd": kindDiagnosis, "icd10": kindDiagnosis, "icd10cm": kindDiagnosis, "icdcode": kindDiagnosis,
	"icd10code": kindDiagnosis, "diagnosis": kindDiagnosis, "diagnosiscode": kindDiagnosis,
	"diagnoses": kindDiagnosis, "dx": kindDiagnosis, "dxcode": kindDiagnosis, "primarydx": kindDiagnosis,
}

// tables finds tables with PHI columns and records their cells.
func (sc *phiScan) tables() {
	s := sc.s
	var fields [][2]int
	for start := 0; start < len(s); {
		end := lineEnd(s, start)
		line := s[start:end]
		sep := tableSeparator(line)
		if sep != 0 {
			fields = splitFields(s, start, end, sep, fields[:0])
			if kinds, useful := columnKinds(s, fields); useful {
				start = sc.tableRows(end+1, sep, kinds)
				continue
			}
		}
		start = end + 1
	}
}

// tableSeparator is the most frequent of ',', '\t', '|', ';' in a line, or
// 0 when none is there or the line is too long to be a header.
func tableSeparator(line string) byte {
	if len(line) > 2048 {
		return 0
	}
	best, n := byte(0), 0
	for _, c := range []byte{',', '\t', '|', ';'} {
		if k := strings.Count(line, string(c)); k > n {
			best, n = c, k
		}
	}
	return best
}

// splitFields splits s[start:end] at sep, honouring double quotes, and
// returns each field's span without surrounding blanks and quotes.
func splitFields(s string, start, end int, sep byte, out [][2]int) [][2]int {
	f := start
	quoted := false
	for i := start; i <= end; i++ {
		if i < end && s[i] == '"' {
			quoted = !quoted
			continue
		}
		if i < end && (s[i] != sep || quoted) {
			continue
		}
		a, b := f, i
		for a < b && (s[a] == ' ' || s[a] == '\t' && sep != '\t' || s[a] == '\r') {
			a++
		}
		for b > a && (s[b-1] == ' ' || s[b-1] == '\t' && sep != '\t' || s[b-1] == '\r') {
			b--
		}
		if b-a >= 2 && s[a] == '"' && s[b-1] == '"' {
			a, b = a+1, b-1
		}
		out = append(out, [2]int{a, b})
		f = i + 1
	}
	return out
}

// columnKinds classifies a header's fields; useful is true when one of them
// is a PHI column other than a name (a name column alone says nothing
// about health).
func columnKinds(s string, fields [][2]int) ([]phiKind, bool) {
	if len(fields) < 2 {
		return nil, false
	}
	var kinds []phiKind
	var norm [40]byte
	for i, f := range fields {
		if i == 0 {
			// A table inside a structured document's string is scanned
			// as "name: value": the header starts after the name.
			if k := strings.LastIndex(s[f[0]:f[1]], ": "); k >= 0 {
				f[0] += k + 2
			}
		}
		if f[1]-f[0] > len(norm) {
			continue
		}
		n := 0
		for _, c := range []byte(s[f[0]:f[1]]) {
			if isAlnum(c) {
				norm[n] = c | 0x20
				n++
			}
		}
		k := phiColumns[string(norm[:n])]
		if k == kindNone {
			continue
		}
		if kinds == nil {
			kinds = make([]phiKind, len(fields))
		}
		kinds[i] = k
	}
	for _, k := range kinds {
		if k != kindNone && k != kindName {
			return kinds, true
		}
	}
	return nil, false
}

// tableRows reads the rows after a header at start and returns where the
// table ends.
func (sc *phiScan) tableRows(start int, sep byte, kinds []phiKind) int {
	s := sc.s
	var fields [][2]int
	for start < len(s) {
		end := lineEnd(s, start)
		if strings.TrimSpace(s[start:end]) == "" {
			return end + 1
		}
		fields = splitFields(s, start, end, sep, fields[:0])
		if len(fields) != len(kinds) {
			return start
		}
		person := false
		var dx [][2]int
		for i, f := range fields {
			switch k := kinds[i]; k {
			case kindSSN, kindMRN, kindPlan, kindDOB:
				if f[1] > f[0] && phiValueEnd(s, f[0], k) == f[1] {
					sc.add(k.rule(), f[0], f[1])
					person = true
				}
			case kindName:
				if parseName(s, f[0], 1) == f[1] {
					sc.anchors = append(sc.anchors, f)
					person = true
				}
			case kindDiagnosis:
				dx = append(dx, f)
			}
		}
		if person {
			sc.tableDx = append(sc.tableDx, dx...)
		}
		start = end + 1
	}
	return start
}

package redact

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var phiRedactor = New(Options{PHI: true, DisableGitleaks: true})

// removed runs RedactText and returns "rule=removed text" for each finding.
func removed(t *testing.T, r *Redactor, in string) []string {
	t.Helper()
	res, err := r.RedactText(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.RuleID+"="+in[f.Start:f.End])
	}
	return got
}

func TestPHIDetection(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"ssn dashed", "Applicant 123-45-6789 signed.", []string{"us-ssn=123-45-6789"}},
		{"ssn labelled compact", "SSN: 123456789", []string{"us-ssn=123456789"}},
		{"ssn labelled spaced", "SS# 123 45 6789", []string{"us-ssn=123 45 6789"}},
		{"ssn long label", "Social Security Number 078-12-3456", []string{"us-ssn=078-12-3456"}},
		{"ssn json key", `{"ssn": "123456789"}`, []string{"us-ssn=123456789"}},
		{"mrn", "MRN: 00482913", []string{"medical-record-number=00482913"}},
		{"mrn hash", "MRN #A-0048291", []string{"medical-record-number=A-0048291"}},
		{"mrn bare", "MRN 00482913 admitted", []string{"medical-record-number=00482913"}},
		{"medical record number", "Medical Record Number: 7731029", []string{"medical-record-number=7731029"}},
		{"medical record no.", "Medical Record No. 7731029", []string{"medical-record-number=7731029"}},
		{"mrn camel key", `{"medicalRecordNumber":"7731029"}`, []string{"medical-record-number=7731029"}},
		{"patient id", "patient_id=55120934", []string{"medical-record-number=55120934"}},
		{"member id", "Member ID: XJH482913027", []string{"health-plan-number=XJH482913027"}},
		{"health plan hash", "Health Plan #: HP-99382211", []string{"health-plan-number=HP-99382211"}},
		{"health plan beneficiary number", "Health Plan Beneficiary Number: 55-1029-3384", []string{"health-plan-number=55-1029-3384"}},
		{"medicare mbi", "Medicare number 1EG4-TE5-MK73", []string{"health-plan-number=1EG4-TE5-MK73"}},
		{"subscriber key", "subscriber_id: W2938475610", []string{"health-plan-number=W2938475610"}},
		{"dob slash", "DOB: 03/14/1962", []string{"date-of-birth=03/14/1962"}},
		{"dob dotted label", "D.O.B. 14.03.1962", []string{"date-of-birth=14.03.1962"}},
		{"date of birth iso", "Date of Birth: 1962-03-14", []string{"date-of-birth=1962-03-14"}},
		{"dob datetime", `"birthDate": "1962-03-14T00:00:00Z"`, []string{"date-of-birth=1962-03-14"}},
		{"dob month name", "born March 3, 1958 in Ohio", []string{"date-of-birth=March 3, 1958"}},
		{"dob born on", "born on 3 Mar 1958", []string{"date-of-birth=3 Mar 1958"}},
		{"dob abbreviated", "Birthdate: 14-Mar-1962", []string{"date-of-birth=14-Mar-1962"}},
		{"dob two-digit year", "dob 3/14/62", []string{"date-of-birth=3/14/62"}},
		{"icd next to name", "Patient: Jane Smith\nDx: E11.9", []string{"icd10-diagnosis=E11.9"}},
		{"icd undotted after label", "Mrs. Alvarez, diagnosis I10 and E78.5", []string{"icd10-diagnosis=I10", "icd10-diagnosis=E78.5"}},
		{"icd seventh character", "Mr. O'Neil fractured his hip (S72.001A).", []string{"icd10-diagnosis=S72.001A"}},
		{"icd next to an mrn", "MRN: 00482913 | ICD-10: J45.909", []string{"medical-record-number=00482913", "icd10-diagnosis=J45.909"}},
		{"icd in json record", `{"patient_name": "Ana Lopez", "icd10": "S72.001A"}`, []string{"icd10-diagnosis=S72.001A"}},
		{"icd last, first", "Patient Name: Lopez, Ana\nPrimary dx: F32.A", []string{"icd10-diagnosis=F32.A"}},
		{"csv table", "name,dob,mrn,icd10\nJane Roe,1971-02-03,55120934,E78.5\n",
			[]string{"date-of-birth=1971-02-03", "medical-record-number=55120934", "icd10-diagnosis=E78.5"}},
		{"csv quoted name", "patient_name,diagnosis\n\"Smith, Bob\",I25.10\n", []string{"icd10-diagnosis=I25.10"}},
		{"tsv", "MRN\tDOB\n55120934\t02/11/1949\n", []string{"medical-record-number=55120934", "date-of-birth=02/11/1949"}},
		{"markdown table", "| Member ID | Name |\n|---|---|\n| W2938475610 | Ana Lopez |\n", []string{"health-plan-number=W2938475610"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := removed(t, phiRedactor, tt.in)
			if strings.Join(got, " | ") != strings.Join(tt.want, " | ") {
				t.Errorf("removed %q\nwant    %q", got, tt.want)
			}
		})
	}
}

// TestPHILookAlikes: values shaped like PHI that are not, and PHI labels
// without PHI after them, are left exactly as they are.
func TestPHILookAlikes(t *testing.T) {
	for _, in := range []string{
		"Call 555-123-4567 or (555) 123-4567.",
		"Order 2024-01-15, invoice 2024-0115-77.",
		"SSN 000-12-3456 and 666-12-3456 and 900-12-3456 are never issued.",
		"SSN: 123-00-4567 / 123-45-0000",
		"part 123-45-6789-01, ref x123-45-6789, v1.123-45-6789",
		"ZIP+4 12345-6789 and a phone 123 456 7890",
		"123456789 records were processed",
		"MRN: pending, Member ID: n/a, Health Plan #: TBD, DOB: unknown",
		"MRN: XXXXXX1234 (masked)",
		"Medical records requests: 2019-2020 backlog",
		"The member count is 12345678; member since 2019.",
		"Born to run, 1975. Date of birth field is optional.",
		"ICD-10 reference: E11.9 Type 2 diabetes mellitus without complications\nI10 Essential hypertension",
		"code,description\nE11.9,Type 2 diabetes mellitus\nI10,Essential hypertension\n",
		"Take vitamin B12 daily; room B12 is on floor 2.",
		"Mr. Smith upgraded to version A10.2.3 of the firmware.",
		"Patient education leaflet, revision 3.",
		"Dr. Adams reviewed the E11.9 guideline.",
		"dob: 13/45/2020 and dob: 1492-10-12",
		"memberId: 42",
		"Mrs. Doe\n\n\nUnrelated appendix: E11.9 is a diabetes code.",
		"[REDACTED:us-ssn] [REDACTED:date-of-birth] MRN: [REDACTED:medical-record-number]",
	} {
		if got := removed(t, phiRedactor, in); len(got) != 0 {
			t.Errorf("%q: removed %q, want nothing", in, got)
		}
	}
}

func TestPHIOffByDefault(t *testing.T) {
	in := "SSN: 123-45-6789 MRN: 00482913 DOB: 03/14/1962"
	if got := removed(t, New(Options{DisableGitleaks: true}), in); len(got) != 0 {
		t.Errorf("PHI detectors ran without Options.PHI: %q", got)
	}
	if got := removed(t, phiRedactor, in); len(got) != 3 {
		t.Errorf("with Options.PHI: %q, want three findings", got)
	}
}

// TestPHIStructured: JSON documents and decoded values (params bound for
// the audit log), numbers included.
func TestPHIStructured(t *testing.T) {
	ctx := context.Background()
	raw := []byte(`{"mrn": 12345678, "ssn": 123456789, "count": 12345678, "memberId": "ABC12345", "notes": "DOB: 1962-03-14"}`)
	out, findings, err := phiRedactor.RedactJSON(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"mrn": "[REDACTED:medical-record-number]", "ssn": "[REDACTED:us-ssn]", "count": 12345678, "memberId": "[REDACTED:health-plan-number]", "notes": "DOB: [REDACTED:date-of-birth]"}`
	if string(out) != want || len(findings) != 4 {
		t.Errorf("RedactJSON:\n got %s (%d findings)\nwant %s", out, len(findings), want)
	}
	params := map[string]any{"query": "SELECT * FROM patients WHERE ssn = '123-45-6789'", "mrn": json.Number("55120934"), "limit": 5,
		"content": "MRN\tDOB\n55120936\t02/11/1949\n"}
	v, findings, err := phiRedactor.RedactValue(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(v)
	if string(got) != `{"content":"MRN\tDOB\n[REDACTED:medical-record-number]\t[REDACTED:date-of-birth]\n","limit":5,"mrn":"[REDACTED:medical-record-number]","query":"SELECT * FROM patients WHERE ssn = '[REDACTED:us-ssn]'"}` || len(findings) != 4 {
		t.Errorf("RedactValue: %s (%d findings)", got, len(findings))
	}
}

func TestPHIRules(t *testing.T) {
	for _, id := range PHIRules() {
		if !IsPHIRule(id) {
			t.Errorf("%s is listed but not recognised", id)
		}
	}
	for _, id := range []string{"email", "credit-card", "password-pair", ""} {
		if IsPHIRule(id) {
			t.Errorf("%s is not a PHI rule", id)
		}
	}
}

// TestPHILinearOnAdversarialInput: the PHI scanners stay linear on inputs
// built to make them backtrack (labels followed by long runs, dense codes
// and anchors).
func TestPHILinearOnAdversarialInput(t *testing.T) {
	inputs := map[string]string{
		"camel labels":  "mrn:" + strings.Repeat("aMrn:", 200_000),
		"long id":       "MRN: " + strings.Repeat("1a", 500_000),
		"dense codes":   strings.Repeat("Mr. Ab E11.9 dx I10 ", 50_000),
		"table rows":    "mrn,dob\n" + strings.Repeat("1234,1962-01-01\n", 60_000),
		"digit run":     strings.Repeat("123-45-", 150_000),
		"comma prose":   strings.Repeat("a, b, c, d, e\n", 70_000),
		"name run":      "Patient: " + strings.Repeat("Aa ", 300_000),
		"honorific run": strings.Repeat("Mr. Mrs. Ms. ", 80_000),
	}
	r := New(Options{PHI: true, DisableGitleaks: true, DisablePII: true, Timeout: 20 * time.Second})
	for name, in := range inputs {
		start := time.Now()
		if _, err := r.RedactText(context.Background(), in); err != nil && !errors.Is(err, ErrInputTooLarge) {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, time.Since(start))
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s (%d bytes): %v, want linear time", name, len(in), d)
		}
	}
}

func FuzzPHI(f *testing.F) {
	for _, s := range []string{
		"Patient: Jane Smith\nMRN: 00482913\nDOB: 03/14/1962\nSSN: 123-45-6789\nMember ID: XJH482913027\nDx: E11.9, I10",
		"name,dob,mrn,icd10\nJane Roe,1971-02-03,55120934,E78.5\n\"Smith, Bob\",02/11/1949,55120935,I25.10\n",
		`{"patient_name": "Ana Lopez", "mrn": "7731029", "dateOfBirth": "1990-07-04", "icd10": "S72.001A"}`,
		"Mr. John Doe (born March 3, 1958) was seen for J45.909.",
		"D.O.B. 14 Mar 1962; SS# 123 45 6789; Health Plan #: HP-99382211",
		"| Member ID | Name |\n|---|---|\n| W2938475610 | Ana Lopez |\n",
		"MRN: pending 555-123-4567 2024-01-15 B12",
	} {
		f.Add(s)
	}
	r := New(Options{PHI: true, DisableGitleaks: true, Timeout: 5 * time.Second})
	f.Fuzz(func(t *testing.T, s string) {
		res, err := r.RedactText(context.Background(), s)
		if err != nil {
			if errors.Is(err, ErrTimeout) || errors.Is(err, ErrInputTooLarge) {
				return
			}
			t.Fatal(err)
		}
		prev := 0
		for _, fd := range res.Findings {
			if fd.Start < prev || fd.End <= fd.Start || fd.End > len(s) {
				t.Fatalf("bad finding %+v (prev end %d, len %d)", fd, prev, len(s))
			}
			prev = fd.End
		}
		if applyFindings(s, res.Findings) != res.Text {
			t.Fatal("Text does not match Findings")
		}
		for _, fd := range findPHI(s, nil) {
			if !IsPHIRule(fd.RuleID) || fd.Start < 0 || fd.End > len(s) || fd.End <= fd.Start {
				t.Fatalf("findPHI: bad finding %+v (len %d)", fd, len(s))
			}
		}
		// Redacting twice changes nothing more: markers are never PHI.
		again, err := r.RedactText(context.Background(), res.Text)
		if err != nil {
			t.Fatal(err)
		}
		if again.Text != res.Text {
			t.Fatalf("not idempotent:\n in %q\nonce %q\ntwice %q", s, res.Text, again.Text)
		}
	})
}

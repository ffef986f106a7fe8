package redact

import (
	"context"
	"strings"
	"testing"
)

func TestLuhnKnownAnswers(t *testing.T) {
	tests := []struct {
		number string
		valid  bool
	}{
		{"4111111111111111", true},  // Visa test number
		{"4111111111111112", false}, // last digit changed
		{"5555555555554444", true},  // Mastercard test number
		{"378282246310005", true},   // American Express test number
		{"378282246310006", false},
		{"6011111111111117", true}, // Discover test number
		{"79927398713", true},      // the classic Luhn example
		{"79927398710", false},
		{"0", false},
		{"12a4", false},
	}
	for _, tt := range tests {
		if got := luhnValid([]byte(tt.number)); got != tt.valid {
			t.Errorf("luhnValid(%s) = %v, want %v", tt.number, got, tt.valid)
		}
	}
}

func TestIBANKnownAnswers(t *testing.T) {
	tests := []struct {
		iban  string
		valid bool
	}{
		{"GB82WEST12345698765432", true},
		{"GB82WEST12345698765431", false}, // last digit changed
		{"DE89370400440532013000", true},
		{"DE89370400440532013001", false},
		{"FR1420041010050500013M02606", true},
		{"NL91ABNA0417164300", true},
		{"NO9386011117947", true},
		{"GB82WEST1234569876543", false},  // one character short for GB
		{"XX82WEST12345698765432", false}, // unknown country
		{"GB00WEST12345698765432", false},
	}
	for _, tt := range tests {
		if got := ibanValid([]byte(tt.iban)); got != tt.valid {
			t.Errorf("ibanValid(%s) = %v, want %v", tt.iban, got, tt.valid)
		}
	}
	g := newFakeGen()
	for country := range ibanLengths {
		if iban := g.iban(country); !ibanValid([]byte(iban)) {
			t.Errorf("generated %s IBAN %s does not validate", country, iban)
		}
	}
}

func TestPIIDetection(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // removed substrings, in order
	}{
		{"visa spaced", "card 4111 1111 1111 1111 ok", []string{"4111 1111 1111 1111"}},
		{"visa dashed", "4111-1111-1111-1111", []string{"4111-1111-1111-1111"}},
		{"amex compact", "pan=378282246310005;", []string{"378282246310005"}},
		{"card after date run", "2024-01-15 4111 1111 1111 1111", []string{"4111 1111 1111 1111"}},
		{"luhn invalid", "4111 1111 1111 1112", nil},
		{"no card prefix", "1234567812345670", nil},
		{"20 digits", "41111111111111111110", nil},
		{"decimal fraction", "0.4111111111111111", nil},
		{"glued to letters", "id4111111111111111x", nil},
		{"iban compact", "to DE89370400440532013000.", []string{"DE89370400440532013000"}},
		{"iban spaced", "GB82 WEST 1234 5698 7654 32 EUR", []string{"GB82 WEST 1234 5698 7654 32"}},
		{"iban bad check", "GB82WEST12345698765431", nil},
		{"iban glued", "XGB82WEST12345698765432", nil},
		{"email", "<bob.smith@mail.example.org>", []string{"bob.smith@mail.example.org"}},
		{"email in query", "https://x.io/u?email=ann@example.com", []string{"ann@example.com"}},
		{"url userinfo not email", "ftp://anonymous@files.example.com/pub", nil},
		{"git remote not email", "git@gitlab.com:team/repo.git", nil},
		{"file name not email", "icon@2x.png", nil},
		{"no tld", "root@localhost", nil},
	}
	r := New(Options{DisableGitleaks: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.RedactText(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range res.Findings {
				got = append(got, tt.in[f.Start:f.End])
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("removed %q, want %q (output %q)", got, tt.want, res.Text)
			}
		})
	}
}

func TestDisablePII(t *testing.T) {
	in := "alice@example.com 4111 1111 1111 1111 DE89370400440532013000 password=x"
	res, err := New(Options{DisablePII: true, DisableGitleaks: true}).RedactText(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "alice@example.com 4111 1111 1111 1111 DE89370400440532013000 password=[REDACTED:password-pair]"; res.Text != want {
		t.Errorf("got %q, want %q", res.Text, want)
	}
}

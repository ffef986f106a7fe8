package redact

import (
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"strings"
)

// fakeGen builds fake secrets from a fixed seed, so the test corpus has no
// real-looking secret constants in the source for repository scanners to
// flag, yet every value matches the detectors' patterns and has the
// entropy of a real key.
type fakeGen struct{ r *rand.Rand }

func newFakeGen() *fakeGen { return &fakeGen{rand.New(rand.NewPCG(20240501, 7))} }

const (
	charsLowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	charsAlnum      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	charsBase32     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	charsHex        = "0123456789abcdef"
	charsBase64     = charsAlnum + "+/"
	charsBase64URL  = charsAlnum + "-_"
	charsDigits     = "0123456789"
)

// pick returns n characters drawn from alphabet.
func (g *fakeGen) pick(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

// base64Bytes returns the standard base64 encoding of n random bytes.
func (g *fakeGen) base64Bytes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.IntN(256))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// pemBody returns lines of base64 like the body of a key block.
func (g *fakeGen) pemBody(lines int) []string {
	out := make([]string, lines)
	for i := range out {
		out[i] = g.pick(charsBase64, 64)
	}
	return out
}

// jwt returns a structurally valid, unsigned-looking JWT.
func (g *fakeGen) jwt() string {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload := enc([]byte(`{"sub":"` + g.pick(charsDigits, 10) + `","name":"Test User","iat":` + g.pick(charsDigits, 10) + `}`))
	return header + "." + payload + "." + g.pick(charsBase64URL, 43)
}

// card returns a Luhn-valid number of the given length with prefix.
func (g *fakeGen) card(prefix string, length int) string {
	d := prefix + g.pick(charsDigits, length-len(prefix)-1)
	for c := byte('0'); c <= '9'; c++ {
		if luhnValid([]byte(d + string(c))) {
			return d + string(c)
		}
	}
	panic("unreachable")
}

// iban returns a valid IBAN for country with a random numeric BBAN.
func (g *fakeGen) iban(country string) string {
	bban := g.pick(charsDigits, ibanLengths[country]-4)
	return makeIBAN(country, bban)
}

// makeIBAN computes the ISO 13616 check digits for country and bban.
func makeIBAN(country, bban string) string {
	rearranged := bban + country + "00"
	rem := 0
	for _, c := range []byte(rearranged) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	check := 98 - rem
	return country + strconv.Itoa(check/10) + strconv.Itoa(check%10) + bban
}

// group inserts sep every n characters.
func group(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

package apikey

import (
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, accepts exactly the strings of the key
// format (so it accepts every generated key), and returns the id inside.
func FuzzParse(f *testing.F) {
	for i := 0; i < 4; i++ {
		key, _, err := Generate()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(key)
		f.Add(key[:len(key)-1])
		f.Add(strings.ToUpper(key))
		f.Add(strings.Replace(key, "_", "-", 2))
	}
	f.Add("")
	f.Add("amk_")
	f.Add("amk_aaaaaaaa_")
	f.Add("amk_aaaaaaaa_" + strings.Repeat("a", SecretLen))
	f.Add("amk_aaaaaaa__" + strings.Repeat("a", SecretLen))
	f.Add("amk_aaaaaaaa_" + strings.Repeat("a", SecretLen-1) + "8")
	f.Add("amk_aaaaaaaa_" + strings.Repeat("a", SecretLen-1) + "é"[:1])
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		want := len(s) == KeyLen && strings.HasPrefix(s, Prefix) && s[len(Prefix)+IDLen] == '_' &&
			onlyIn(s[len(Prefix):len(Prefix)+IDLen], alphabet) && onlyIn(s[len(Prefix)+IDLen+1:], alphabet)
		if (err == nil) != want {
			t.Fatalf("Parse(%q) = %q, %v; the format says valid=%v", s, id, err, want)
		}
		if err != nil {
			if id != "" {
				t.Fatalf("Parse(%q) failed but returned id %q", s, id)
			}
			return
		}
		if !ValidID(id) || Prefix+id+"_"+s[len(Prefix)+IDLen+1:] != s {
			t.Fatalf("Parse(%q) = %q: not the key's id", s, id)
		}
	})
}

// onlyIn is the reference check: every byte of s is in set.
func onlyIn(s, set string) bool {
	for _, r := range s {
		if !strings.ContainsRune(set, r) {
			return false
		}
	}
	return true
}

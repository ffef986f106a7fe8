package redact

import (
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestKeywordMatcherFindsEveryOccurrence(t *testing.T) {
	keywords := []string{"ey", "key", "s.", "hvs.", "api", "api-", "sk", "sk_", "password", "passwd", "a"}
	m := newKeywordMatcher(keywords)
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := "aeikpsvy._-dwor"
	for n := 0; n < 2000; n++ {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		text := string(b)
		var got, want []string
		m.scan(text, func(id int32, start int) { got = append(got, keywords[id]+"@"+strconv.Itoa(start)) })
		for _, k := range keywords {
			for i := 0; i+len(k) <= len(text); i++ {
				if strings.HasPrefix(text[i:], k) {
					want = append(want, k+"@"+strconv.Itoa(i))
				}
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %v, want %v", text, got, want)
		}
	}
}

package witness

import (
	"bytes"
	"testing"
)

// FuzzParseAddCheckpoint: whatever the body, parsing does not panic, and
// what parses encodes back to the same bytes.
func FuzzParseAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 0\n\norigin\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— origin AAAA\n"))
	f.Add([]byte("old 20852014\nPlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n\nx\n"))
	f.Add([]byte("old 01\n\nx"))
	f.Add([]byte("old 5\nnot base64\n\nx"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseAddCheckpoint(body)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Marshal(), body) {
			t.Fatalf("%q parses but encodes back as %q", body, r.Marshal())
		}
		parseHead(string(r.Checkpoint))
	})
}

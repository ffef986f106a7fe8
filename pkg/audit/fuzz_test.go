package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func FuzzUnmarshalEntry(f *testing.F) {
	f.Add([]byte(goldenEncoding))
	f.Add([]byte(minimalEncoding))
	for seq := range uint64(5) {
		f.Add(mustMarshal(f, sampleEntry(seq)))
	}
	e := sampleEntry(9)
	e.Params, e.ParamsDigest = nil, &ParamsDigest{SHA256: strings.Repeat("0f", 32), Bytes: 99999}
	f.Add(mustMarshal(f, e))
	e.Caller = &Caller{ID: "key:ci", Kind: "apikey", ClientID: "c", Scopes: []string{"a", "b"}}
	f.Add(mustMarshal(f, e))
	f.Add([]byte(strings.Replace(goldenEncoding, `"seq":42`, `"seq": 42`, 1)))
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":2,"seq":0}`))
	f.Add([]byte(`{"v":1,"seq":0,"timestamp":"2026-01-01T00:00:00.000000Z","agent":"a","action":"x","params":{"a":[{"b":"\u00e9"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b)
		if err != nil {
			return
		}
		again, err := Marshal(e)
		if err != nil {
			t.Fatalf("accepted entry does not re-encode: %v\n%q", err, b)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted entry re-encodes differently:\n in %q\nout %q", b, again)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(goldenBody))
	f.Add(Checkpoint{Origin: "o", Root: EmptyRoot}.Body())
	f.Add(Checkpoint{Origin: testOrigin(1), Size: MaxTreeSize, Root: LeafHash(nil), Time: testEpoch}.Body())
	f.Add([]byte("o\n05\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nfoo\n"))
	f.Add([]byte("o\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseCheckpoint(body)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted checkpoint is invalid: %v\n%q", err, body)
		}
		if again := c.Body(); !bytes.Equal(again, body) {
			t.Fatalf("accepted checkpoint re-encodes differently:\n in %q\nout %q", body, again)
		}
	})
}

func FuzzOpenProof(f *testing.F) {
	fx := newProofFixture(f)
	for _, seq := range []int{0, 1, 11, 36} {
		f.Add(fx.proofJSON(f, seq))
	}
	p, err := NewInclusionProof(fx.signed, fx.entries[4], fx.tree)
	if err != nil {
		f.Fatal(err)
	}
	compact, _ := json.Marshal(map[string]any{
		"v": 1, "origin": p.Origin, "checkpoint": string(p.Checkpoint), "seq": 4, "leaf_index": 4,
		"tree_size": 37, "entry": string(p.Entry), "proof": p.Proof,
	})
	f.Add(compact)
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"origin":"o","checkpoint":"x","seq":0,"leaf_index":0,"tree_size":1,"entry":"{}","proof":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseInclusionProof(b)
		if err != nil {
			return
		}
		enc, err := p.Marshal()
		if err != nil {
			t.Fatalf("accepted proof does not encode: %v", err)
		}
		p2, err := ParseInclusionProof(enc)
		if err != nil {
			t.Fatalf("re-encoded proof rejected: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("proof changed by re-encoding:\n%+v\n%+v", p, p2)
		}
		if enc2, _ := p2.Marshal(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
		// Soundness: the only checkpoint signed by the trusted key is the
		// fixture's, so anything that verifies must be a real entry of it.
		v, err := p.Verify(fx.vs)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Entry, fx.entries[p.Seq]) || v.Checkpoint != fx.cp {
			t.Fatalf("verified a proof of something not in the log: seq %d entry %q", p.Seq, p.Entry)
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[1.0,-0,1e3,"\u00e9\n"]}`, `[]`, `{}`, `null`, `"\ud800"`, ` 1 `,
		`{"a":{"a":{"a":[[[]]]}}}`, `{"\u0000":"<>&\u2028"}`, "\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CanonicalJSON(b)
		// Accepts exactly what encoding/json accepts, except for the
		// documented extra rules.
		if valid := json.Valid(b); err != nil {
			if valid && !strings.Contains(err.Error(), "duplicate object key") && !strings.Contains(err.Error(), "nested deeper") {
				t.Fatalf("rejected valid JSON %q: %v", b, err)
			}
			return
		} else if !valid {
			t.Fatalf("accepted invalid JSON %q as %q", b, c)
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form is not valid JSON: %q", c)
		}
		c2, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("canonical form not a fixed point: %q -> %q (%v)", c, c2, err)
		}
		// Same data as encoding/json sees it (numbers compared as written).
		var x, y any
		d1 := json.NewDecoder(bytes.NewReader(b))
		d1.UseNumber()
		d2 := json.NewDecoder(bytes.NewReader(c))
		d2.UseNumber()
		if d1.Decode(&x) != nil || d2.Decode(&y) != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("canonical form changes the data: %q -> %q", b, c)
		}
	})
}

// FuzzParseTimestamp: the digit-by-digit parser accepts exactly what
// time.Parse with the layout accepts and Format gives back unchanged, and
// yields the same instant; AppendTimestamp writes what FormatTimestamp does.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2026-12-04T14:18:00.123456Z", "2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00.000000Z",
		"0000-01-01T00:00:00.000000Z", "9999-12-31T23:59:60.000000Z", "2026-13-01T00:00:00.000000Z", "2026-04-31T00:00:00.000000Z",
		"2026-12-04T24:00:00.000000Z", "2026-12-04T14:18:00.12345Z", "2026-12-04t14:18:00.123456Z", "+026-12-04T14:18:00.123456Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := time.Parse(timestampLayout, s)
		wantOK := err == nil && want.Format(timestampLayout) == s
		got, ok := parseTimestamp(s)
		if ok != wantOK || ok && !got.Equal(want) {
			t.Fatalf("parseTimestamp(%q) = %v, %v; time.Parse says %v, %v (%v)", s, got, ok, want, wantOK, err)
		}
		if ok {
			if a, f := string(AppendTimestamp(nil, got)), FormatTimestamp(got); a != f || a != s {
				t.Fatalf("AppendTimestamp %q, FormatTimestamp %q, input %q", a, f, s)
			}
		}
	})
}

package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// proofFixture is a 37-entry log with a signed checkpoint over all of it.
type proofFixture struct {
	entries [][]byte
	tree    *MemoryTree
	cp      Checkpoint
	signed  []byte
	vs      note.Verifiers
}

func newProofFixture(t testing.TB) *proofFixture {
	t.Helper()
	entries, tree := buildLog(t, 37)
	cp := checkpointAt(t, tree, testOrigin(1), tree.Size())
	signed, err := SignCheckpoint(cp, testSigner(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	return &proofFixture{entries, tree, cp, signed, note.VerifierList(testVerifier(t, 1))}
}

func (f *proofFixture) proofJSON(t testing.TB, seq int) []byte {
	t.Helper()
	p, err := NewInclusionProof(f.signed, f.entries[seq], f.tree)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInclusionProofRoundTrip(t *testing.T) {
	f := newProofFixture(t)
	for seq := range f.entries {
		b := f.proofJSON(t, seq)
		got, err := VerifyInclusionProof(b, f.vs)
		if err != nil {
			t.Fatalf("seq %d: %v\n%s", seq, err, b)
		}
		want, _ := Unmarshal(f.entries[seq])
		if !reflect.DeepEqual(got.Entry, want) || got.Checkpoint != f.cp || got.SignedBy.Name != testOrigin(1) {
			t.Fatalf("seq %d: verified %+v", seq, got)
		}
	}
}

func TestInclusionProofFormat(t *testing.T) {
	f := newProofFixture(t)
	b := f.proofJSON(t, 5)
	// A plain JSON reader sees exactly the documented members.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 8 || m["v"] != 1.0 || m["origin"] != testOrigin(1) || m["seq"] != 5.0 ||
		m["leaf_index"] != 5.0 || m["tree_size"] != 37.0 ||
		m["checkpoint"] != string(f.signed) || m["entry"] != string(f.entries[5]) {
		t.Fatalf("unexpected proof document:\n%s", b)
	}
	path, _ := f.tree.InclusionProof(5, 37)
	hashes := m["proof"].([]any)
	if len(hashes) != len(path) {
		t.Fatalf("%d proof hashes, want %d", len(hashes), len(path))
	}
	for i := range path {
		if hashes[i] != path[i].String() {
			t.Fatalf("proof[%d] = %v, want %s", i, hashes[i], path[i])
		}
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"v\": 1,\n  \"origin\": ")) || !bytes.HasSuffix(b, []byte("\n}\n")) {
		t.Fatalf("not the documented layout:\n%s", b)
	}
	if bytes.Contains(b, []byte(`\u003c`)) {
		t.Fatalf("HTML escaping in proof file:\n%s", b)
	}
}

// editProof decodes a proof file generically, lets fn change it, and
// re-encodes it.
func editProof(t *testing.T, b []byte, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInclusionProofTampering(t *testing.T) {
	f := newProofFixture(t)
	good := f.proofJSON(t, 11)
	other := f.proofJSON(t, 12)
	var otherDoc map[string]any
	_ = json.Unmarshal(other, &otherDoc)

	// A checkpoint of the same log at a smaller size, properly signed.
	small := checkpointAt(t, f.tree, testOrigin(1), 20)
	smallSigned, err := SignCheckpoint(small, testSigner(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	// The same checkpoint, signed by a key nobody trusts.
	foreignSigned, err := SignCheckpoint(f.cp, testSigner(t, 7))
	if err != nil {
		t.Fatal(err)
	}

	edited := func(e Entry) string { return string(mustMarshal(t, e)) }
	e11, _ := Unmarshal(f.entries[11])
	e11.Reason = "nothing to see here"

	cases := []struct {
		name string
		edit func(m map[string]any)
		kind Kind
		seq  int64
	}{
		{"entry edited canonically", func(m map[string]any) { m["entry"] = edited(e11) }, KindProofInvalid, 11},
		{"entry swapped for another", func(m map[string]any) { m["entry"] = otherDoc["entry"] }, KindProofInvalid, 11},
		{"entry reformatted", func(m map[string]any) { m["entry"] = strings.Replace(m["entry"].(string), `,"`, `, "`, 1) }, KindProofInvalid, 11},
		{"proof hash replaced", func(m map[string]any) { m["proof"].([]any)[1] = LeafHash([]byte("x")).String() }, KindProofInvalid, 11},
		{"proof hash dropped", func(m map[string]any) { m["proof"] = m["proof"].([]any)[1:] }, KindProofInvalid, 11},
		{"proof of another leaf", func(m map[string]any) { m["proof"] = otherDoc["proof"] }, KindProofInvalid, 11},
		{"index moved", func(m map[string]any) { m["seq"], m["leaf_index"] = 12, 12 }, KindProofInvalid, 12},
		{"tree size contradicts checkpoint", func(m map[string]any) { m["tree_size"] = 38 }, KindProofInvalid, 11},
		{"origin contradicts checkpoint", func(m map[string]any) { m["origin"] = "agentmesh/other" }, KindProofInvalid, 11},
		{"checkpoint swapped for a smaller one", func(m map[string]any) { m["checkpoint"] = string(smallSigned) }, KindProofInvalid, 11},
		{"checkpoint body edited", func(m map[string]any) {
			m["checkpoint"] = strings.Replace(m["checkpoint"].(string), "\n37\n", "\n38\n", 1)
			m["tree_size"] = 38
		}, KindSignatureInvalid, NoSeq},
		{"checkpoint by unknown key", func(m map[string]any) { m["checkpoint"] = string(foreignSigned) }, KindUnknownKey, NoSeq},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := editProof(t, good, tc.edit)
			if bytes.Equal(b, editProof(t, good, func(map[string]any) {})) {
				t.Fatal("test bug: edit changed nothing")
			}
			_, err := VerifyInclusionProof(b, f.vs)
			wantVerifyError(t, err, tc.kind, tc.seq)
		})
	}
	if _, err := VerifyInclusionProof(good, f.vs); err != nil {
		t.Fatalf("untampered proof rejected: %v", err)
	}
}

func TestParseInclusionProofStrict(t *testing.T) {
	f := newProofFixture(t)
	good := string(f.proofJSON(t, 3))
	if _, err := ParseInclusionProof([]byte(good)); err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("test bug: %q not in proof", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	firstHash := f.mustPath(t, 3)[0].String()
	ep := func(fn func(m map[string]any)) string { return string(editProof(t, []byte(good), fn)) }
	cases := map[string]string{
		"not JSON":             "proof",
		"array":                "[]",
		"trailing data":        good + "{}",
		"unknown member":       edit(`"v": 1,`, `"v": 1, "extra": true,`),
		"member case":          edit(`"origin":`, `"Origin":`),
		"duplicate member":     edit(`"v": 1,`, `"v": 1, "seq": 3,`),
		"missing member":       ep(func(m map[string]any) { delete(m, "leaf_index") }),
		"version 2":            edit(`"v": 1`, `"v": 2`),
		"version string":       edit(`"v": 1`, `"v": "1"`),
		"seq string":           edit(`"seq": 3`, `"seq": "3"`),
		"seq fraction":         edit(`"seq": 3`, `"seq": 3.0`),
		"seq exponent":         edit(`"seq": 3`, `"seq": 3e0`),
		"seq negative":         edit(`"seq": 3`, `"seq": -3`),
		"seq leading zero":     edit(`"seq": 3`, `"seq": 03`),
		"seq != leaf_index":    edit(`"seq": 3`, `"seq": 4`),
		"leaf_index too large": ep(func(m map[string]any) { m["seq"], m["leaf_index"] = 37, 37 }),
		"tree_size zero":       ep(func(m map[string]any) { m["tree_size"] = 0 }),
		"tree_size overflow":   edit(`"tree_size": 37`, `"tree_size": 9223372036854775808`),
		"tree_size huge":       edit(`"tree_size": 37`, `"tree_size": 4611686018427387904`),
		"origin empty":         ep(func(m map[string]any) { m["origin"] = "" }),
		"origin number":        ep(func(m map[string]any) { m["origin"] = 5 }),
		"checkpoint empty":     ep(func(m map[string]any) { m["checkpoint"] = "" }),
		"checkpoint null":      ep(func(m map[string]any) { m["checkpoint"] = nil }),
		"entry empty":          ep(func(m map[string]any) { m["entry"] = "" }),
		"entry as object":      ep(func(m map[string]any) { m["entry"] = map[string]any{"v": 1} }),
		"proof null":           ep(func(m map[string]any) { m["proof"] = nil }),
		"proof string":         ep(func(m map[string]any) { m["proof"] = firstHash }),
		"proof hash number":    ep(func(m map[string]any) { m["proof"] = []any{1} }),
		"proof hash short":     edit(firstHash, firstHash[:40]),
		"proof hash long":      edit(firstHash, firstHash[:43]+"AAAA="),
		"proof hash unpadded":  edit(firstHash, firstHash[:43]),
		"proof hash hex":       edit(firstHash, strings.Repeat("0", 64)),
		"proof hash url b64":   edit(firstHash, strings.Repeat("_", 43)+"="),
		"proof too long":       ep(func(m map[string]any) { m["proof"] = longProof(64) }),
	}
	for name, in := range cases {
		if in == good {
			t.Errorf("%s: test bug: input unchanged", name)
			continue
		}
		p, err := ParseInclusionProof([]byte(in))
		if err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
			continue
		}
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Kind != KindMalformed || !errors.Is(err, ErrMalformedProof) {
			t.Errorf("%s: error %v is not a KindMalformed ErrMalformedProof", name, err)
		}
	}
}

func longProof(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = EmptyRoot.String()
	}
	return out
}

func (f *proofFixture) mustPath(t testing.TB, seq int64) tlog.RecordProof {
	t.Helper()
	p, err := f.tree.InclusionProof(seq, f.tree.Size())
	if err != nil || len(p) == 0 {
		t.Fatalf("path: %v", err)
	}
	return p
}

func TestNewInclusionProofChecks(t *testing.T) {
	f := newProofFixture(t)
	// Entry beyond the checkpoint.
	cp := checkpointAt(t, f.tree, testOrigin(1), 10)
	signed, _ := SignCheckpoint(cp, testSigner(t, 1))
	if _, err := NewInclusionProof(signed, f.entries[10], f.tree); err == nil {
		t.Error("proved entry 10 under a checkpoint of size 10")
	}
	if _, err := NewInclusionProof(signed, f.entries[9], f.tree); err != nil {
		t.Errorf("entry 9 under checkpoint of size 10: %v", err)
	}
	// Stored tree that does not match the checkpoint.
	otherEntries, otherTree := buildLog(t, 37)
	otherEntries[4] = mustMarshal(t, func() Entry { e := sampleEntry(4); e.Reason = "x"; return e }())
	otherTree = &MemoryTree{}
	for _, b := range otherEntries {
		otherTree.Append(b)
	}
	if _, err := NewInclusionProof(f.signed, f.entries[3], otherTree); err == nil {
		t.Error("built a proof from a tree that does not match the checkpoint")
	}
	// Entry that is not in the tree.
	if _, err := NewInclusionProof(f.signed, otherEntries[4], f.tree); err == nil {
		t.Error("built a proof for an entry that is not in the tree")
	}
	// Non-canonical entry, unsigned note.
	if _, err := NewInclusionProof(f.signed, append(f.entries[3], '\n'), f.tree); err == nil {
		t.Error("built a proof for a non-canonical entry")
	}
	if _, err := NewInclusionProof(f.cp.Body(), f.entries[3], f.tree); err == nil {
		t.Error("built a proof from a bare checkpoint body")
	}
}

func TestVerifyConsistency(t *testing.T) {
	_, tree := buildLog(t, 40)
	old := checkpointAt(t, tree, "o", 17)
	cur := checkpointAt(t, tree, "o", 40)
	p, err := tree.ConsistencyProof(17, 40)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(old, cur, p); err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(old, old, nil); err != nil {
		t.Fatalf("checkpoint inconsistent with itself: %v", err)
	}
	if err := VerifyConsistency(Checkpoint{Origin: "o", Root: EmptyRoot}, cur, nil); err != nil {
		t.Fatalf("empty tree inconsistent: %v", err)
	}
	wantVerifyError(t, VerifyConsistency(cur, old, p), KindRollback, 17)

	forked := old
	forked.Root = LeafHash([]byte("rewritten history"))
	wantVerifyError(t, VerifyConsistency(forked, cur, p), KindFork, NoSeq)

	// A genuinely forked log: same first 16 entries, different 17th.
	entries, _ := buildLog(t, 40)
	entries[16] = mustMarshal(t, func() Entry { e := sampleEntry(16); e.Result = ResultAllowed; e.Reason = "rewritten"; return e }())
	forkTree := &MemoryTree{}
	for _, b := range entries {
		forkTree.Append(b)
	}
	forkCur := checkpointAt(t, forkTree, "o", 40)
	fp, _ := forkTree.ConsistencyProof(17, 40)
	wantVerifyError(t, VerifyConsistency(old, forkCur, fp), KindFork, NoSeq)
}

// A log that itself stored something wrong at leaf 2: the proof is valid,
// but what it proves is reported.
func TestInclusionProofOfBadLog(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leaf2 []byte
		kind  Kind
	}{
		{"entry with another seq", mustMarshal(t, sampleEntry(5)), KindReordered},
		{"non-canonical entry", append(mustMarshal(t, sampleEntry(2)), ' '), KindMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, _ := buildLog(t, 6)
			entries[2] = tc.leaf2
			tree := &MemoryTree{}
			for _, b := range entries {
				if _, err := tree.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			cp := checkpointAt(t, tree, testOrigin(1), 6)
			signed, err := SignCheckpoint(cp, testSigner(t, 1))
			if err != nil {
				t.Fatal(err)
			}
			path, err := tree.InclusionProof(2, 6)
			if err != nil {
				t.Fatal(err)
			}
			p := &InclusionProof{Origin: cp.Origin, Checkpoint: signed, Seq: 2, LeafIndex: 2, TreeSize: 6, Entry: entries[2], Proof: path}
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			_, err = VerifyInclusionProof(b, note.VerifierList(testVerifier(t, 1)))
			wantVerifyError(t, err, tc.kind, 2)
		})
	}
}

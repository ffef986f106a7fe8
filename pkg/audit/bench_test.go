package audit

import (
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func BenchmarkLeafHash(b *testing.B) {
	e := mustMarshal(b, sampleEntry(1))
	b.SetBytes(int64(len(e)))
	for b.Loop() {
		LeafHash(e)
	}
}

func BenchmarkMarshalEntry(b *testing.B) {
	e := sampleEntry(1)
	for b.Loop() {
		if _, err := Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalEntry(b *testing.B) {
	e := mustMarshal(b, sampleEntry(1))
	b.SetBytes(int64(len(e)))
	for b.Loop() {
		if _, err := Unmarshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyEntries replays a log of b.N entries: ns/op is the cost per
// entry of a full verification (canonical decoding, leaf hashing, tree).
func BenchmarkVerifyEntries(b *testing.B) {
	entries := make([][]byte, b.N)
	for i := range entries {
		entries[i] = mustMarshal(b, sampleEntry(uint64(i)))
	}
	b.ResetTimer()
	res, err := VerifyEntries(sliceSeq(entries), VerifyOptions{})
	if err != nil || res.Size != int64(b.N) {
		b.Fatal(res, err)
	}
}

// BenchmarkVerifyEntriesWithTree adds the comparison with stored hashes.
func BenchmarkVerifyEntriesWithTree(b *testing.B) {
	entries := make([][]byte, b.N)
	tree := &MemoryTree{}
	for i := range entries {
		entries[i] = mustMarshal(b, sampleEntry(uint64(i)))
		tree.Append(entries[i])
	}
	b.ResetTimer()
	res, err := VerifyEntries(sliceSeq(entries), VerifyOptions{Tree: tree, TreeSize: tree.Size()})
	if err != nil || res.Size != int64(b.N) {
		b.Fatal(res, err)
	}
}

func BenchmarkMemoryTreeAppend(b *testing.B) {
	e := mustMarshal(b, sampleEntry(1))
	tree := &MemoryTree{}
	for b.Loop() {
		tree.Append(e)
	}
}

func BenchmarkSignCheckpoint(b *testing.B) {
	s := testSigner(b, 1)
	c := Checkpoint{Origin: testOrigin(1), Size: 1234567, Root: LeafHash(nil), Time: testEpoch}
	for b.Loop() {
		if _, err := SignCheckpoint(c, s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenCheckpoint(b *testing.B) {
	c := Checkpoint{Origin: testOrigin(1), Size: 1234567, Root: LeafHash(nil), Time: testEpoch}
	msg, err := SignCheckpoint(c, testSigner(b, 1))
	if err != nil {
		b.Fatal(err)
	}
	vs := note.VerifierList(testVerifier(b, 2), testVerifier(b, 1))
	for b.Loop() {
		if _, _, err := OpenCheckpoint(msg, vs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyInclusionProof(b *testing.B) {
	fx := newProofFixture(b)
	p := fx.proofJSON(b, 11)
	for b.Loop() {
		if _, err := VerifyInclusionProof(p, fx.vs); err != nil {
			b.Fatal(err)
		}
	}
}

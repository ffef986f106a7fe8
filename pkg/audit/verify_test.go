package audit

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

const logSize = 40

func cloneLog(entries [][]byte) [][]byte {
	out := make([][]byte, len(entries))
	for i, b := range entries {
		out[i] = bytes.Clone(b)
	}
	return out
}

func TestVerifyCleanLog(t *testing.T) {
	entries, tree := buildLog(t, logSize)
	cps := []Checkpoint{
		checkpointAt(t, tree, "o", 40),
		checkpointAt(t, tree, "o", 0),
		checkpointAt(t, tree, "o", 10),
		checkpointAt(t, tree, "o", 10),
		checkpointAt(t, tree, "o", 33),
	}
	res, err := VerifyEntries(sliceSeq(entries), VerifyOptions{Checkpoints: cps, Tree: tree, TreeSize: tree.Size()})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := tree.Root(logSize)
	if res.Size != logSize || res.Root != root || res.CheckpointsMatched != len(cps) {
		t.Fatalf("VerifyEntries = %+v, want size %d root %s, %d checkpoints", res, logSize, root, len(cps))
	}
	// The empty log.
	res, err = VerifyEntries(sliceSeq(nil), VerifyOptions{Checkpoints: []Checkpoint{{Origin: "o", Root: EmptyRoot}}})
	if err != nil || res.Size != 0 || res.Root != EmptyRoot || res.CheckpointsMatched != 1 {
		t.Fatalf("empty log: %+v, %v", res, err)
	}
	// Every prefix of the log verifies to the root of that size.
	for n := 0; n <= logSize; n++ {
		res, err := VerifyEntries(sliceSeq(entries[:n]), VerifyOptions{})
		want, _ := tree.Root(int64(n))
		if err != nil || res.Root != want {
			t.Fatalf("prefix %d: %+v, %v", n, res, err)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	entries, tree := buildLog(t, logSize)
	withTree := VerifyOptions{Tree: tree, TreeSize: tree.Size()}
	withCheckpoints := VerifyOptions{Checkpoints: []Checkpoint{
		checkpointAt(t, tree, "o", 10),
		checkpointAt(t, tree, "o", 20),
		checkpointAt(t, tree, "o", 30),
	}}
	reencode := func(seq int, fn func(e *Entry)) []byte {
		e, err := Unmarshal(entries[seq])
		if err != nil {
			t.Fatal(err)
		}
		fn(&e)
		b := mustMarshal(t, e)
		if bytes.Equal(b, entries[seq]) {
			t.Fatalf("test bug: edit of entry %d changed nothing", seq)
		}
		return b
	}

	cases := []struct {
		name   string
		mutate func(log [][]byte) [][]byte
		opts   VerifyOptions
		kind   Kind
		seq    int64
		detail string // substring of the detail
	}{
		{
			name: "flipped byte makes entry non-canonical",
			mutate: func(log [][]byte) [][]byte {
				i := bytes.Index(log[17], []byte(`"agent"`))
				log[17][i+1] ^= 0x20 // "agent" -> "Agent"
				return log
			},
			kind: KindContentChanged, seq: 17, detail: "not a canonical entry",
		},
		{
			name: "flipped byte breaks JSON",
			mutate: func(log [][]byte) [][]byte {
				log[17][len(log[17])-1] ^= 0x01
				return log
			},
			kind: KindContentChanged, seq: 17,
		},
		{
			name: "clean edit, pinned by stored leaf hashes",
			mutate: func(log [][]byte) [][]byte {
				log[17] = reencode(17, func(e *Entry) { e.Result, e.Reason = ResultBlocked, "edited" })
				return log
			},
			opts: withTree, kind: KindContentChanged, seq: 17, detail: "leaf hash",
		},
		{
			name: "clean edit, located by checkpoints",
			mutate: func(log [][]byte) [][]byte {
				log[17] = reencode(17, func(e *Entry) { e.Result, e.Reason = ResultBlocked, "edited" })
				return log
			},
			opts: withCheckpoints, kind: KindContentChanged, seq: 10, detail: "[10, 20)",
		},
		{
			name: "flipped byte in a string value",
			mutate: func(log [][]byte) [][]byte {
				i := bytes.Index(log[17], []byte("claude-desktop"))
				log[17][i] ^= 0x01 // 'c' -> 'b': still canonical
				return log
			},
			opts: withTree, kind: KindContentChanged, seq: 17,
		},
		{
			name:   "middle entry deleted",
			mutate: func(log [][]byte) [][]byte { return slices.Delete(log, 17, 18) },
			kind:   KindMissingEntry, seq: 17, detail: "no entry has seq 17",
		},
		{
			name:   "middle entry deleted, with stored tree",
			mutate: func(log [][]byte) [][]byte { return slices.Delete(log, 17, 18) },
			opts:   withTree, kind: KindMissingEntry, seq: 17,
		},
		{
			name:   "three entries deleted",
			mutate: func(log [][]byte) [][]byte { return slices.Delete(log, 17, 20) },
			kind:   KindMissingEntry, seq: 17, detail: "from 16 to 20",
		},
		{
			name:   "first entry deleted",
			mutate: func(log [][]byte) [][]byte { return log[1:] },
			kind:   KindMissingEntry, seq: 0,
		},
		{
			name: "two entries swapped",
			mutate: func(log [][]byte) [][]byte {
				log[17], log[18] = log[18], log[17]
				return log
			},
			kind: KindReordered, seq: 17, detail: "position 18",
		},
		{
			name: "entry moved to the end",
			mutate: func(log [][]byte) [][]byte {
				e := log[5]
				return append(slices.Delete(log, 5, 6), e)
			},
			kind: KindReordered, seq: 5,
		},
		{
			name:   "entry duplicated",
			mutate: func(log [][]byte) [][]byte { return slices.Insert(log, 18, log[17]) },
			kind:   KindReordered, seq: 17, detail: "appears again",
		},
		{
			name: "seq field edited",
			mutate: func(log [][]byte) [][]byte {
				log[17] = reencode(17, func(e *Entry) { e.Seq = 19 })
				return log
			},
			kind: KindContentChanged, seq: 17, detail: "seq was edited",
		},
		{
			name: "entry deleted and later ones renumbered",
			mutate: func(log [][]byte) [][]byte {
				log = slices.Delete(log, 17, 18)
				for i := 17; i < len(log); i++ {
					e, _ := Unmarshal(log[i])
					e.Seq = uint64(i)
					if e.Intent != nil {
						*e.Intent = e.Seq - 1
					}
					log[i] = mustMarshal(t, e)
				}
				return log
			},
			opts: withTree, kind: KindContentChanged, seq: 17,
		},
		{
			name:   "tail truncated below a checkpoint",
			mutate: func(log [][]byte) [][]byte { return log[:25] },
			opts:   withCheckpoints, kind: KindRollback, seq: 25, detail: "commits to 30",
		},
		{
			name:   "tail truncated below the stored tree",
			mutate: func(log [][]byte) [][]byte { return log[:25] },
			opts:   withTree, kind: KindMissingEntry, seq: 25,
		},
		{
			name: "entry appended without being logged",
			mutate: func(log [][]byte) [][]byte {
				return append(log, mustMarshal(t, sampleEntry(logSize)))
			},
			opts: withTree, kind: KindContentChanged, seq: logSize, detail: "not in the stored hash tree",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := tc.mutate(cloneLog(entries))
			_, err := VerifyEntries(sliceSeq(log), tc.opts)
			ve := wantVerifyError(t, err, tc.kind, tc.seq)
			if !strings.Contains(ve.Detail, tc.detail) {
				t.Fatalf("detail %q lacks %q", ve.Detail, tc.detail)
			}
			t.Log(err)
		})
	}
	// The unmodified log passes with each set of options.
	for _, opts := range []VerifyOptions{{}, withTree, withCheckpoints} {
		if _, err := VerifyEntries(sliceSeq(entries), opts); err != nil {
			t.Fatalf("clean log rejected: %v", err)
		}
	}
}

func TestVerifyStoredTreeCorrupted(t *testing.T) {
	entries, tree := buildLog(t, logSize)
	// Corrupt each interior stored hash in turn (not a leaf): every leaf
	// still matches, but proofs served from the tree would be wrong. This
	// includes nodes, like the one over leaves 6..7, that the root at the
	// final size does not depend on.
	for level := 1; level <= 5; level++ {
		for n := int64(0); n < logSize>>level; n++ {
			i := tlog.StoredHashIndex(level, n)
			tree.stored[i][0] ^= 0xff
			_, err := VerifyEntries(sliceSeq(entries), VerifyOptions{Tree: tree, TreeSize: tree.Size()})
			ve := wantVerifyError(t, err, KindStoredHashChanged, n<<level)
			want := fmt.Sprintf("leaves %d..%d ", n<<level, (n+1)<<level-1)
			if !strings.Contains(ve.Detail, want) {
				t.Fatalf("detail %q does not name %q", ve.Detail, want)
			}
			tree.stored[i][0] ^= 0xff
		}
	}
	if _, err := VerifyEntries(sliceSeq(entries), VerifyOptions{Tree: tree, TreeSize: tree.Size()}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyIteratorError(t *testing.T) {
	entries, _ := buildLog(t, 5)
	boom := errors.New("disk on fire")
	var seq iter.Seq2[[]byte, error] = func(yield func([]byte, error) bool) {
		for i, b := range entries {
			if i == 3 {
				yield(nil, boom)
				return
			}
			if !yield(b, nil) {
				return
			}
		}
	}
	_, err := VerifyEntries(seq, VerifyOptions{})
	var ve *VerifyError
	if !errors.Is(err, boom) || errors.As(err, &ve) || !strings.Contains(err.Error(), "position 3") {
		t.Fatalf("got %v, want the iterator's error at position 3", err)
	}
}

func TestVerifyWitness(t *testing.T) {
	entries, tree := buildLog(t, logSize)
	witness := checkpointAt(t, tree, "o", 25)
	if err := VerifyWitness(witness, tree.Size(), tree); err != nil {
		t.Fatal(err)
	}
	if err := VerifyWitness(checkpointAt(t, tree, "o", logSize), tree.Size(), tree); err != nil {
		t.Fatal(err)
	}
	// The log was cut back to 20 entries and regrown differently.
	bigger := checkpointAt(t, tree, "o", logSize)
	short := &MemoryTree{}
	for _, b := range entries[:20] {
		short.Append(b)
	}
	wantVerifyError(t, VerifyWitness(bigger, short.Size(), short), KindRollback, 20)
	for i := 20; i < logSize+5; i++ {
		e := sampleEntry(uint64(i))
		e.Reason = "regrown"
		short.Append(mustMarshal(t, e))
	}
	wantVerifyError(t, VerifyWitness(witness, short.Size(), short), KindFork, NoSeq)
	wantVerifyError(t, VerifyWitness(bigger, short.Size(), short), KindFork, NoSeq)
	// An older checkpoint of the prefix that was kept still verifies.
	if err := VerifyWitness(checkpointAt(t, tree, "o", 20), short.Size(), short); err != nil {
		t.Fatal(err)
	}
}

// rehashed is a log rewritten by someone who also recomputed the stored
// tree: only signed checkpoints of the original can tell.
func rehashed(t *testing.T, log [][]byte) *MemoryTree {
	t.Helper()
	tree := &MemoryTree{}
	for _, b := range log {
		if _, err := tree.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// locator answers VerifyOptions.Locate from signed checkpoints of every
// size, as a store keeping every signed checkpoint does.
func locator(signed *MemoryTree, stored *MemoryTree) func(lo, hi int64) (int64, bool, error) {
	return func(lo, hi int64) (int64, bool, error) {
		for m := lo + 1; m <= hi && m <= stored.Size() && m <= signed.Size(); m++ {
			want, _ := signed.Root(m)
			got, _ := stored.Root(m)
			if want != got {
				return m - 1, true, nil
			}
		}
		return 0, false, nil
	}
}

// TestVerifyTellsEntriesFromStoredHashes: an edited entry, an edited stored
// leaf hash and an edited interior hash are each named for what they are,
// with and without signed checkpoints; rewrites that recomputed the stored
// tree are located by the signed history.
func TestVerifyTellsEntriesFromStoredHashes(t *testing.T) {
	entries, tree := buildLog(t, logSize)
	final := []Checkpoint{checkpointAt(t, tree, "o", logSize)}
	edit := func(log [][]byte, seq int) [][]byte {
		e, _ := Unmarshal(log[seq])
		e.Reason = "edited"
		log[seq] = mustMarshal(t, e)
		return log
	}
	renumber := func(log [][]byte, from int) [][]byte {
		for i := from; i < len(log); i++ {
			e, _ := Unmarshal(log[i])
			e.Seq = uint64(i)
			if e.Intent != nil {
				*e.Intent = e.Seq - 1
			}
			log[i] = mustMarshal(t, e)
		}
		return log
	}
	cases := []struct {
		name    string
		log     [][]byte
		stored  *MemoryTree
		cps     []Checkpoint
		locate  bool // answer Locate from the original's signed checkpoints
		rehash  bool // the stored tree was recomputed from the edited log
		kind    Kind
		seq     int64
		mention string
	}{
		{name: "entry edited, no checkpoint", log: edit(cloneLog(entries), 16), kind: KindContentChanged, seq: 16, mention: "entry was edited"},
		{name: "entry edited, signed root", log: edit(cloneLog(entries), 16), cps: final, kind: KindContentChanged, seq: 16, mention: "no longer hash to the signed root"},
		{name: "last entry edited", log: edit(cloneLog(entries), logSize-1), cps: final, kind: KindContentChanged, seq: logSize - 1},
		{name: "stored leaf edited, no checkpoint", stored: editStored(tree, tlog.StoredHashIndex(0, 16)), kind: KindStoredHashChanged, seq: 16, mention: "stored leaf hash was edited"},
		{name: "stored leaf edited, signed root", stored: editStored(tree, tlog.StoredHashIndex(0, 16)), cps: final, kind: KindStoredHashChanged, seq: 16},
		{name: "stored level-1 hash edited", stored: editStored(tree, tlog.StoredHashIndex(1, 8)), cps: final, kind: KindStoredHashChanged, seq: 16, mention: "leaves 16..17"},
		{name: "edit and rehash, located", log: edit(cloneLog(entries), 23), rehash: true, locate: true, cps: final, kind: KindContentChanged, seq: 23, mention: "from seq 23 on was rewritten"},
		{name: "edit and rehash, unlocated", log: edit(cloneLog(entries), 23), rehash: true, cps: final, kind: KindContentChanged, seq: 0},
		{name: "delete, renumber, rehash", log: renumber(slices.Delete(cloneLog(entries), 23, 24), 23), rehash: true, locate: true, cps: final, kind: KindMissingEntry, seq: 23, mention: "deleted and the rest renumbered"},
		{name: "tail rolled back", log: cloneLog(entries)[:30], rehash: true, locate: true, cps: final, kind: KindRollback, seq: 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := tc.log
			if log == nil {
				log = entries
			}
			stored := tc.stored
			switch {
			case tc.rehash:
				stored = rehashed(t, log)
			case stored == nil:
				stored = tree
			}
			opts := VerifyOptions{Tree: stored, TreeSize: stored.Size(), Checkpoints: tc.cps}
			if tc.locate {
				opts.Locate = locator(tree, stored)
			}
			_, err := VerifyEntries(sliceSeq(log), opts)
			ve := wantVerifyError(t, err, tc.kind, tc.seq)
			if !strings.Contains(ve.Detail, tc.mention) {
				t.Fatalf("detail %q lacks %q", ve.Detail, tc.mention)
			}
		})
	}
}

func editStored(tree *MemoryTree, idx int64) *MemoryTree {
	c := &MemoryTree{stored: slices.Clone(tree.stored), size: tree.size}
	c.stored[idx][3] ^= 0x40
	return c
}

// TestVerifyFromStart: an incremental run from a verified frontier checks
// the new entries and their stored hashes and ends at the same root.
func TestVerifyFromStart(t *testing.T) {
	entries, tree := buildLog(t, logSize)
	for _, base := range []int64{0, 1, 16, 23, logSize} {
		start, err := FrontierAt(base, tree)
		if err != nil {
			t.Fatal(err)
		}
		res, err := VerifyEntries(sliceSeq(entries[base:]), VerifyOptions{Start: &start, Tree: tree, TreeSize: tree.Size(),
			Checkpoints: []Checkpoint{checkpointAt(t, tree, "o", 5), checkpointAt(t, tree, "o", logSize)}})
		root, _ := tree.Root(logSize)
		if err != nil || res.Root != root || res.Size != logSize {
			t.Fatalf("from %d: %+v, %v", base, res, err)
		}
	}
	start, _ := FrontierAt(16, tree)
	log := cloneLog(entries)
	e, _ := Unmarshal(log[30])
	e.Reason = "edited"
	log[30] = mustMarshal(t, e)
	_, err := VerifyEntries(sliceSeq(log[16:]), VerifyOptions{Start: &start, Tree: tree, TreeSize: tree.Size(), Checkpoints: []Checkpoint{checkpointAt(t, tree, "o", logSize)}})
	wantVerifyError(t, err, KindContentChanged, 30)
}

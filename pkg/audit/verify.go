package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// VerifyOptions says what, besides the entries themselves, a log is checked
// against.
type VerifyOptions struct {
	// Checkpoints the log must agree with, in any order. They must already
	// be authenticated (see OpenCheckpoint); origins are not compared. A
	// checkpoint whose tree size exceeds the number of entries is a
	// KindRollback; one whose root differs from the entries' root at its
	// size is a KindContentChanged, located to the entries after the
	// largest smaller checkpoint that did match.
	Checkpoints []Checkpoint

	// Tree, if not nil, serves the tlog stored hashes that the store keeps
	// beside the entries, for a tree of TreeSize leaves. Every stored hash
	// is then compared with the one recomputed from the entries: a
	// differing leaf hash pins an edited entry to its exact seq
	// (KindContentChanged), a differing interior hash means the stored
	// tree, from which proofs are served, was altered (KindFork).
	Tree     tlog.HashReader
	TreeSize int64

	// Inspect, if not nil, is called with each entry that decoded
	// canonically and sits at its place, before it is hashed; an error it
	// returns ends the replay. A store uses it to check what it keeps
	// beside the entries (indexed columns) without decoding them twice.
	Inspect func(e Entry) error
}

// VerifyResult describes a log that verified.
type VerifyResult struct {
	Size               int64     // number of entries
	Root               tlog.Hash // RFC 6962 root of all entries
	CheckpointsMatched int       // how many of VerifyOptions.Checkpoints were checked
}

// VerifyEntries replays a log from its entries' stored bytes, which entries
// must yield in seq order (a nil error with each, or a non-nil error to abort
// the replay, which VerifyEntries then returns wrapped). Memory use does not
// grow with the number of entries.
//
// Each entry must decode canonically ([Unmarshal]) and carry seq equal to its
// position (0, 1, 2, ...). The first problem is returned as a
// [*VerifyError]:
//
//   - KindContentChanged at seq i: entry i does not decode canonically, or
//     its leaf hash differs from opts.Tree's, or entry i claims a later seq
//     that a later entry also claims (its seq field was edited), or entry i
//     is beyond opts.TreeSize;
//   - KindMissingEntry at seq i: the entry at position i has a larger seq and
//     no later entry has seq i (entries were deleted); also when opts.Tree
//     holds more leaves than there are entries;
//   - KindReordered at seq i: seq i appears later than its place, or a seq
//     appears twice;
//   - KindContentChanged / KindRollback for opts.Checkpoints, as described
//     there; KindFork when an interior hash of opts.Tree is wrong.
//
// On success it returns the number of entries and their root, which a caller
// can compare with the latest signed checkpoint, or sign.
func VerifyEntries(entries iter.Seq2[[]byte, error], opts VerifyOptions) (VerifyResult, error) {
	v := &replay{opts: opts, cps: slices.Clone(opts.Checkpoints)}
	slices.SortStableFunc(v.cps, func(a, b Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	if opts.Tree != nil {
		v.stored = &storedReader{r: opts.Tree, size: opts.TreeSize}
	}
	if err := v.checkCheckpoints(); err != nil {
		return VerifyResult{}, err
	}
	var pos int64
	for b, err := range entries {
		if err != nil {
			return VerifyResult{}, fmt.Errorf("audit: reading entry at position %d: %w", pos, err)
		}
		if v.jump != nil {
			if verr := v.scan(pos, b); verr != nil {
				return VerifyResult{}, verr
			}
		} else if verr := v.add(pos, b); verr != nil {
			return VerifyResult{}, verr
		}
		pos++
	}
	if v.jump != nil {
		return VerifyResult{}, v.jump.conclude()
	}
	if err := v.finish(); err != nil {
		return VerifyResult{}, err
	}
	return VerifyResult{Size: v.tree.n, Root: v.tree.root(), CheckpointsMatched: v.matched}, nil
}

type replay struct {
	opts    VerifyOptions
	cps     []Checkpoint // sorted by size; cps[next:] not yet reached
	next    int
	matched int
	good    int64 // size of the largest checkpoint that matched
	tree    frontier
	stored  *storedReader
	fresh   []tlog.Hash // scratch: stored hashes computed for one leaf
	jump    *seqJump    // set once a seq larger than expected was seen
}

// add verifies the entry at position pos, all previous ones being fine.
func (v *replay) add(pos int64, b []byte) error {
	e, err := Unmarshal(b)
	if err != nil {
		return verifyErr(pos, KindContentChanged, err,
			"the entry at position %d is not a canonical entry: %v", pos, err)
	}
	seq := int64(e.Seq)
	switch {
	case seq < pos:
		return verifyErr(seq, KindReordered, nil,
			"seq %d appears again at position %d, after seq %d", seq, pos, pos-1)
	case seq > pos:
		v.jump = &seqJump{want: pos, got: seq}
		return nil
	}
	if v.opts.Inspect != nil {
		if err := v.opts.Inspect(e); err != nil {
			return err
		}
	}
	leaf := LeafHash(b)
	if v.stored == nil {
		v.fresh = v.tree.append(leaf, v.fresh[:0])
		return v.checkCheckpoints()
	}
	stored, ok, err := v.stored.get(pos)
	if err != nil {
		return err
	}
	if !ok {
		return verifyErr(pos, KindContentChanged, nil,
			"entry %d is not in the stored hash tree, which has %d leaves: it was added without being logged", pos, v.stored.size)
	}
	if stored[0] != leaf {
		return verifyErr(pos, KindContentChanged, nil,
			"entry %d has leaf hash %s, but the stored tree has %s: the entry was edited", pos, leaf, stored[0])
	}
	v.fresh = v.tree.append(leaf, v.fresh[:0])
	for level := 1; level < len(v.fresh); level++ {
		if stored[level] != v.fresh[level] {
			lo := (pos + 1) - 1<<level
			return verifyErr(NoSeq, KindFork, nil,
				"the stored hash of leaves %d..%d is %s, but those entries hash to %s: the stored tree was altered",
				lo, pos, stored[level], v.fresh[level])
		}
	}
	return v.checkCheckpoints()
}

// checkCheckpoints compares the checkpoints of exactly the current size.
func (v *replay) checkCheckpoints() error {
	n := v.tree.n
	for v.next < len(v.cps) && v.cps[v.next].Size == n {
		c := v.cps[v.next]
		if root := v.tree.root(); root != c.Root {
			return verifyErr(v.good, KindContentChanged, nil,
				"entries 0..%d hash to root %s, but checkpoint %q of tree size %d%s has root %s: an entry with seq in [%d, %d) was changed, removed, inserted or reordered after the checkpoint was signed",
				n-1, root, c.Origin, c.Size, timeNote(c.Time), c.Root, v.good, n)
		}
		v.good = n
		v.matched++
		v.next++
	}
	return nil
}

func timeNote(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " (signed " + FormatTimestamp(t) + ")"
}

func (v *replay) finish() error {
	n := v.tree.n
	if v.stored != nil {
		if n < v.opts.TreeSize {
			return verifyErr(n, KindMissingEntry, nil,
				"the stored hash tree has %d leaves but there are only %d entries: entries %d..%d were deleted",
				v.opts.TreeSize, n, n, v.opts.TreeSize-1)
		}
		stored, err := TreeRoot(v.opts.TreeSize, v.opts.Tree)
		if err != nil {
			return err
		}
		if root := v.tree.root(); stored != root {
			// Unreachable unless opts.Tree answers inconsistently:
			// every stored hash was compared above.
			return verifyErr(NoSeq, KindFork, nil,
				"the stored hash tree's root %s at size %d differs from the entries' root %s",
				stored, n, root)
		}
	}
	if v.next < len(v.cps) {
		c := v.cps[len(v.cps)-1]
		return verifyErr(n, KindRollback, nil,
			"the log has %d entries, but checkpoint %q%s commits to %d: entries %d..%d are gone",
			n, c.Origin, timeNote(c.Time), c.Size, n, c.Size-1)
	}
	return nil
}

// seqJump tracks, after the entry at position want carried the larger seq
// got, whether seq want (or got again) turns up later.
type seqJump struct {
	want, got int64
	gotAgain  int64 // position where got reappeared, or 0
}

func (v *replay) scan(pos int64, b []byte) error {
	// Only the seq matters here; later entries may be damaged too.
	var s struct {
		Seq *int64 `json:"seq"`
	}
	if json.Unmarshal(b, &s) != nil || s.Seq == nil {
		return nil
	}
	j := v.jump
	switch *s.Seq {
	case j.want:
		return verifyErr(j.want, KindReordered, nil,
			"seq %d appears at position %d instead of %d (position %d holds seq %d)", j.want, pos, j.want, j.want, j.got)
	case j.got:
		if j.gotAgain == 0 {
			j.gotAgain = pos
		}
	}
	return nil
}

func (j *seqJump) conclude() error {
	if j.gotAgain != 0 {
		return verifyErr(j.want, KindContentChanged, nil,
			"the entry at position %d claims seq %d, which position %d also holds, and no entry has seq %d: the entry's seq was edited",
			j.want, j.got, j.gotAgain, j.want)
	}
	if j.got == j.want+1 {
		return verifyErr(j.want, KindMissingEntry, nil,
			"no entry has seq %d: seq jumps from %d to %d", j.want, j.want-1, j.got)
	}
	return verifyErr(j.want, KindMissingEntry, nil,
		"no entry has seq %d: seq jumps from %d to %d (up to %d entries missing)", j.want, j.want-1, j.got, j.got-j.want)
}

// frontier holds the roots of the perfect subtrees along the right edge of
// a growing tree: enough to compute the RFC 6962 root at the current size.
type frontier struct {
	n      int64
	hashes []tlog.Hash // left to right, strictly decreasing subtree sizes
}

// append adds a leaf and appends to out, and returns, the hashes this
// creates: the leaf hash, then the root of each subtree the leaf completes,
// smallest first. These are exactly the tlog stored hashes of the leaf
// (tlog.StoredHashes), to be found at tlog.StoredHashIndex(0, n) onwards.
func (f *frontier) append(leaf tlog.Hash, out []tlog.Hash) []tlog.Hash {
	f.hashes = append(f.hashes, leaf)
	f.n++
	out = append(out, leaf)
	// Each trailing zero bit of the new size completes one subtree.
	for m := f.n; m&1 == 0; m >>= 1 {
		k := len(f.hashes)
		f.hashes[k-2] = NodeHash(f.hashes[k-2], f.hashes[k-1])
		f.hashes = f.hashes[:k-1]
		out = append(out, f.hashes[k-2])
	}
	return out
}

func (f *frontier) root() tlog.Hash {
	if len(f.hashes) == 0 {
		return EmptyRoot
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = NodeHash(f.hashes[i], h)
	}
	return h
}

// storedReader reads, in batches, the stored hashes written with each leaf:
// for leaf i, 1 + (trailing one bits of i) hashes, contiguous from
// tlog.StoredHashIndex(0, i).
type storedReader struct {
	r     tlog.HashReader
	size  int64       // leaves in the stored tree
	start int64       // first leaf in buf
	end   int64       // leaf after the last in buf
	base  int64       // stored index of buf[0]
	buf   []tlog.Hash // stored hashes of leaves start..end-1
}

const storedBatch = 512 // leaves per ReadHashes call

func storedCount(i int64) int64 { return 1 + int64(bits.TrailingZeros64(uint64(i+1))) }

// get returns the stored hashes of leaf i, or false if the stored tree has
// no leaf i.
func (sr *storedReader) get(i int64) ([]tlog.Hash, bool, error) {
	if i < 0 || i >= sr.size {
		return nil, false, nil
	}
	if i < sr.start || i >= sr.end {
		end := min(i+storedBatch, sr.size)
		first := tlog.StoredHashIndex(0, i)
		last := tlog.StoredHashIndex(0, end-1) + storedCount(end-1) // exclusive
		idx := make([]int64, last-first)
		for j := range idx {
			idx[j] = first + int64(j)
		}
		hs, err := sr.r.ReadHashes(idx)
		if err != nil {
			return nil, false, fmt.Errorf("audit: reading stored hashes of leaves %d..%d: %w", i, end-1, err)
		}
		if len(hs) != len(idx) {
			return nil, false, fmt.Errorf("audit: reading stored hashes of leaves %d..%d: got %d hashes for %d indexes", i, end-1, len(hs), len(idx))
		}
		sr.start, sr.end, sr.base, sr.buf = i, end, first, hs
	}
	off := tlog.StoredHashIndex(0, i) - sr.base
	return sr.buf[off : off+storedCount(i)], true, nil
}

// VerifyWitness checks an older, authenticated checkpoint (for example one a
// witness kept) against the log's stored hashes for its current size: the
// log must have at least witness.Size leaves ([KindRollback] otherwise, with
// Seq the first missing seq) and its root at that size must be the
// checkpoint's ([KindFork] otherwise: history was rewritten).
func VerifyWitness(witness Checkpoint, treeSize int64, r tlog.HashReader) error {
	if witness.Size > treeSize {
		return verifyErr(treeSize, KindRollback, nil,
			"the log has %d entries, but checkpoint %q%s commits to %d: entries %d..%d are gone",
			treeSize, witness.Origin, timeNote(witness.Time), witness.Size, treeSize, witness.Size-1)
	}
	root, err := TreeRoot(witness.Size, r)
	if err != nil {
		return err
	}
	if root != witness.Root {
		return verifyErr(NoSeq, KindFork, nil,
			"the log's root at tree size %d is %s, but checkpoint %q%s has %s: the first %d entries were rewritten",
			witness.Size, root, witness.Origin, timeNote(witness.Time), witness.Root, witness.Size)
	}
	return nil
}

package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"strings"
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
	// largest smaller checkpoint that did match (and narrowed by Locate).
	Checkpoints []Checkpoint

	// Tree, if not nil, serves the tlog stored hashes that the store keeps
	// beside the entries, for a tree of TreeSize leaves. Every stored hash
	// is then compared with the one recomputed from the entries. A leaf
	// hash that differs pins a change to its exact seq: the entry was
	// edited (KindContentChanged) when the entries no longer hash to the
	// signed roots, the stored hash was (KindStoredHashChanged) when they
	// still do. A differing interior hash alone is an edited stored hash.
	Tree     tlog.HashReader
	TreeSize int64

	// Start, if not nil, is the verified frontier of the first
	// Start.Size() entries (incremental verification): entries then
	// yields only the entries from seq Start.Size() on, and the tree
	// continues from Start.
	Start *Frontier

	// Inspect, if not nil, is called with each entry that decoded
	// canonically, sits at its place and agrees with its stored leaf hash.
	// The first error it returns is the verdict unless the entries or the
	// stored tree show a problem. A store uses it to check what it keeps
	// beside the entries (indexed columns) without decoding them twice.
	Inspect func(e Entry) error

	// Locate, if not nil, narrows down where entries that agree with the
	// stored tree stop agreeing with what was signed: the entries were
	// rewritten and the stored hashes recomputed to match, or entries were
	// deleted and the rest renumbered. It is called with lo < hi, where
	// the entries' root matches a signed checkpoint of size lo and not one
	// of size hi (or hi entries are all that is left), and returns the
	// largest size in [lo, hi) at which a signed checkpoint still matches
	// the stored tree, when one of size ≤ hi does not (found false: every
	// signed checkpoint up to hi matches). A store keeping every signed
	// checkpoint answers to the exact commit.
	Locate func(lo, hi int64) (good int64, found bool, err error)
}

// VerifyResult describes a log that verified.
type VerifyResult struct {
	Size               int64     // number of entries
	Root               tlog.Hash // RFC 6962 root of all entries
	CheckpointsMatched int       // how many of VerifyOptions.Checkpoints were checked
	Frontier           Frontier  // the verified tree, for incremental runs
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
//     its leaf hash differs from opts.Tree's while the entries no longer
//     hash to a signed root, or entry i claims a later seq that a later
//     entry also claims (its seq field was edited), or entry i is beyond
//     opts.TreeSize, or entries from i on were rewritten together with
//     the stored tree (located by opts.Locate);
//   - KindStoredHashChanged at seq i: the stored hash of leaf i, or of a
//     subtree starting at leaf i, differs from the entries' while the
//     entries still hash to every signed root;
//   - KindMissingEntry at seq i: the entry at position i has a larger seq and
//     no later entry has seq i (entries were deleted); when opts.Tree
//     holds more leaves than there are entries; when entries from i on
//     were deleted and the rest renumbered (located by opts.Locate);
//   - KindReordered at seq i: seq i appears later than its place, or a seq
//     appears twice;
//   - KindRollback at seq i: a signed checkpoint commits to more entries
//     than the i there are, and the i that are left are as signed.
//
// On success it returns the number of entries and their root, which a caller
// can compare with the latest signed checkpoint, or sign.
func VerifyEntries(entries iter.Seq2[[]byte, error], opts VerifyOptions) (VerifyResult, error) {
	return VerifyDecoded(func(yield func(*Decoded, error) bool) {
		var d Decoded
		for b, err := range entries {
			if err != nil {
				yield(nil, err)
				return
			}
			d = DecodeEntry(b)
			if !yield(&d, nil) {
				return
			}
		}
	}, opts)
}

// Decoded is an entry's stored bytes decoded for [VerifyDecoded]: the work
// that does not depend on the other entries, which a store may spread over
// several goroutines.
type Decoded struct {
	Raw   []byte
	Entry Entry     // valid when Err is nil
	Err   error     // why Raw is not a canonical entry ([Unmarshal])
	Leaf  tlog.Hash // LeafHash(Raw)
	// Inspected, when HasInspected, is what VerifyOptions.Inspect would
	// say of Entry, computed beforehand; VerifyDecoded then uses it
	// instead of calling Inspect.
	Inspected    error
	HasInspected bool
}

// DecodeEntry decodes b and computes its leaf hash.
func DecodeEntry(b []byte) Decoded {
	e, err := Unmarshal(b)
	return Decoded{Raw: b, Entry: e, Err: err, Leaf: LeafHash(b)}
}

// VerifyDecoded is [VerifyEntries] over entries already decoded (in seq
// order, as VerifyEntries takes them), so that decoding can run ahead on
// other goroutines. The *Decoded is not kept after the next one is asked
// for.
func VerifyDecoded(entries iter.Seq2[*Decoded, error], opts VerifyOptions) (VerifyResult, error) {
	v := &replay{opts: opts, cps: slices.Clone(opts.Checkpoints), leafBad: -1}
	slices.SortStableFunc(v.cps, func(a, b Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	if opts.Start != nil {
		v.tree = opts.Start.Clone()
		v.good = v.tree.Size()
		for v.next < len(v.cps) && v.cps[v.next].Size < v.good {
			v.next++ // covered by the run Start came from
		}
	}
	if opts.Tree != nil {
		v.stored = &storedReader{r: opts.Tree, size: opts.TreeSize}
	}
	if err := v.checkCheckpoints(); err != nil {
		return VerifyResult{}, err
	}
	pos := v.tree.Size()
	for d, err := range entries {
		if err != nil {
			return VerifyResult{}, fmt.Errorf("audit: reading entry at position %d: %w", pos, err)
		}
		if v.jump != nil {
			if verr := v.scan(pos, d.Raw); verr != nil {
				return VerifyResult{}, verr
			}
		} else if verr := v.add(pos, d); verr != nil {
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
	return VerifyResult{Size: v.tree.Size(), Root: v.tree.Root(), CheckpointsMatched: v.matched, Frontier: v.tree}, nil
}

type replay struct {
	opts    VerifyOptions
	cps     []Checkpoint // sorted by size; cps[next:] not yet reached
	next    int
	matched int
	good    int64 // size of the largest checkpoint that matched
	tree    Frontier
	stored  *storedReader
	fresh   []tlog.Hash // scratch: stored hashes computed for one leaf
	jump    *seqJump    // set once a seq larger than expected was seen
	// The first disagreements with the stored tree, kept while the
	// replay goes on: whether the entries or the stored hashes were
	// edited is decided by the signed roots further on.
	leafBad    int64 // first leaf whose stored hash differs, or -1
	leafDetail string
	// leafNode: the first stored interior hash covering leafBad was
	// compared (checked), and agreed (same): then the leaf\'s stored hash,
	// not the entry, was edited.
	leafNodeChecked, leafNodeSame bool
	nodeBad                       *VerifyError // first differing interior hash
	inspectBad                    error        // first complaint of opts.Inspect
	rootBad                       *VerifyError // first signed root the entries missed
}

// add verifies the entry at position pos, all previous ones being in place.
func (v *replay) add(pos int64, d *Decoded) error {
	if err := d.Err; err != nil {
		return verifyErr(pos, KindContentChanged, err,
			"the entry at position %d is not a canonical entry: %v", pos, err)
	}
	e := &d.Entry
	seq := int64(e.Seq)
	switch {
	case seq < pos:
		return verifyErr(seq, KindReordered, nil,
			"seq %d appears again at position %d, after seq %d", seq, pos, pos-1)
	case seq > pos:
		v.jump = &seqJump{want: pos, got: seq}
		return nil
	}
	leaf := d.Leaf
	if v.stored == nil {
		v.inspect(d)
		v.fresh = v.tree.Append(leaf, v.fresh[:0])
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
	v.fresh = v.tree.Append(leaf, v.fresh[:0])
	if stored[0] != leaf {
		if v.leafBad < 0 {
			v.leafBad = pos
			v.leafDetail = fmt.Sprintf("entry %d has leaf hash %s, but the stored tree has %s", pos, leaf, stored[0])
		}
	} else {
		v.inspect(d)
	}
	for level := 1; level < len(v.fresh); level++ {
		lo := (pos + 1) - 1<<level
		same := stored[level] == v.fresh[level]
		if v.leafBad >= lo && !v.leafNodeChecked {
			// The subtree over the leaf that disagrees: stored interior
			// hashes were computed from the leaf as it was logged.
			v.leafNodeChecked, v.leafNodeSame = true, same
			continue
		}
		if !same && v.nodeBad == nil && !(v.leafBad >= lo) {
			v.nodeBad = verifyErr(lo, KindStoredHashChanged, nil,
				"the stored hash of leaves %d..%d is %s, but those entries hash to %s: the stored tree was edited",
				lo, pos, stored[level], v.fresh[level])
		}
	}
	return v.checkCheckpoints()
}

func (v *replay) inspect(d *Decoded) {
	switch {
	case v.inspectBad != nil:
	case d.HasInspected:
		v.inspectBad = d.Inspected
	case v.opts.Inspect != nil:
		v.inspectBad = v.opts.Inspect(d.Entry)
	}
}

// checkCheckpoints compares the checkpoints of exactly the current size.
func (v *replay) checkCheckpoints() error {
	n := v.tree.Size()
	for v.next < len(v.cps) && v.cps[v.next].Size == n {
		c := v.cps[v.next]
		if root := v.tree.Root(); root != c.Root {
			if v.rootBad == nil {
				v.rootBad = verifyErr(v.good, KindContentChanged, nil,
					"entries 0..%d hash to root %s, but checkpoint %q of tree size %d%s has root %s: an entry with seq in [%d, %d) was changed, removed, inserted or reordered after the checkpoint was signed",
					n-1, root, c.Origin, c.Size, timeNote(c.Time), c.Root, v.good, n)
				v.rootBad.hi = n
			}
		} else if v.rootBad == nil {
			v.good = n
		}
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

// finish decides, once every entry was replayed, what the disagreements
// found on the way mean.
func (v *replay) finish() error {
	n := v.tree.Size()
	switch {
	case v.leafBad >= 0 && v.rootBad != nil && v.leafBad < v.rootBad.hi:
		// The entries miss a signed root, and one of them disagrees
		// with its stored leaf hash: that entry was edited.
		return verifyErr(v.leafBad, KindContentChanged, nil, "%s, and the entries no longer hash to the signed root: the entry was edited", v.leafDetail)
	case v.leafBad >= 0 && v.good > v.leafBad:
		return verifyErr(v.leafBad, KindStoredHashChanged, nil,
			"%s, and the entries still hash to the signed root of tree size %d: the stored leaf hash was edited", v.leafDetail, v.good)
	case v.leafBad >= 0 && v.leafNodeChecked && v.leafNodeSame:
		return verifyErr(v.leafBad, KindStoredHashChanged, nil,
			"%s, but the stored subtree over it still matches the entries: the stored leaf hash was edited", v.leafDetail)
	case v.leafBad >= 0:
		return verifyErr(v.leafBad, KindContentChanged, nil, "%s: the entry was edited", v.leafDetail)
	case v.nodeBad != nil && v.rootBad == nil:
		return v.nodeBad
	case v.rootBad != nil:
		return v.located(v.rootBad, KindContentChanged, "rewritten")
	case v.inspectBad != nil:
		return v.inspectBad
	}
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
		if root := v.tree.Root(); stored != root {
			// Unreachable unless opts.Tree answers inconsistently:
			// every stored hash was compared above.
			return verifyErr(NoSeq, KindStoredHashChanged, nil,
				"the stored hash tree's root %s at size %d differs from the entries' root %s",
				stored, n, root)
		}
	}
	if v.next < len(v.cps) {
		c := v.cps[len(v.cps)-1]
		rb := verifyErr(n, KindRollback, nil,
			"the log has %d entries, but checkpoint %q%s commits to %d: entries %d..%d are gone",
			n, c.Origin, timeNote(c.Time), c.Size, n, c.Size-1)
		rb.hi = n
		return v.located(rb, KindMissingEntry, "deleted")
	}
	return nil
}

// located narrows a divergence from a signed root with opts.Locate: when the
// entries already stop matching what was signed before hi, the change is
// there, not at the tail.
func (v *replay) located(e *VerifyError, kind Kind, what string) error {
	if v.opts.Locate == nil || e.hi <= v.good {
		return e
	}
	good, found, err := v.opts.Locate(v.good, e.hi)
	if err != nil {
		return err
	}
	if !found {
		return e
	}
	if kind == KindMissingEntry {
		return verifyErr(good, kind, nil,
			"entries 0..%d are as signed at tree size %d, but the next signed checkpoint no longer matches and %s: entries from seq %d on were deleted and the rest renumbered (with the stored tree recomputed)",
			good-1, good, strings.TrimPrefix(e.Detail, "the log has "), good)
	}
	return verifyErr(good, kind, nil,
		"entries 0..%d are as signed at tree size %d, but the next signed checkpoint no longer matches: an entry from seq %d on was %s and the stored tree recomputed to match (%s)",
		good-1, good, good, what, e.Detail)
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

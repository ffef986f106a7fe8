package audit

import (
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// Frontier is the compact form of an RFC 6962 tree of n leaves: the roots of
// the perfect subtrees along its right edge, one per set bit of n, largest
// first. It is all a writer needs to append leaves and compute the root (RFC
// 6962 §2.1), in O(log n) memory, and it is what a log's writer keeps in
// memory so that it signs roots it computed itself rather than roots it read
// back from storage (see [FrontierAt]).
//
// The zero value is the empty tree. A Frontier is a value: copies made with
// [Frontier.Clone] evolve independently.
type Frontier struct {
	n      int64
	hashes []tlog.Hash // left to right, strictly decreasing subtree sizes
}

// Size returns the number of leaves.
func (f *Frontier) Size() int64 { return f.n }

// Clone returns an independent copy of f.
func (f *Frontier) Clone() Frontier {
	return Frontier{n: f.n, hashes: append([]tlog.Hash(nil), f.hashes...)}
}

// Equal reports whether f and g describe the same tree.
func (f *Frontier) Equal(g *Frontier) bool {
	if f.n != g.n || len(f.hashes) != len(g.hashes) {
		return false
	}
	for i := range f.hashes {
		if f.hashes[i] != g.hashes[i] {
			return false
		}
	}
	return true
}

// Append adds a leaf hash and appends to out, and returns, the hashes this
// creates: the leaf hash, then the root of each subtree the leaf completes,
// smallest first. These are exactly the tlog stored hashes of the leaf
// ([tlog.StoredHashes]), to be stored from tlog.StoredHashIndex(0, n) on.
func (f *Frontier) Append(leaf tlog.Hash, out []tlog.Hash) []tlog.Hash {
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

// Root returns the RFC 6962 root of the tree ([EmptyRoot] when empty).
func (f *Frontier) Root() tlog.Hash {
	if len(f.hashes) == 0 {
		return EmptyRoot
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = NodeHash(f.hashes[i], h)
	}
	return h
}

// FrontierIndexes returns the tlog stored-hash indexes ([tlog.StoredHashIndex])
// of the right-edge subtree roots of a tree of n leaves, in frontier order.
func FrontierIndexes(n int64) []int64 {
	idx := make([]int64, 0, bits.OnesCount64(uint64(n)))
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) == 0 {
			continue
		}
		idx = append(idx, tlog.StoredHashIndex(level, start>>level))
		start += 1 << level
	}
	return idx
}

// FrontierAt reads the frontier of the first n leaves from stored hashes.
// What it reads is only as trustworthy as the store: compare its Root with
// a signed checkpoint's root before relying on it. Any other stored hashes
// hashing to that root would be a SHA-256 collision.
func FrontierAt(n int64, r tlog.HashReader) (Frontier, error) {
	if err := checkTreeSize(n); err != nil {
		return Frontier{}, err
	}
	idx := FrontierIndexes(n)
	if len(idx) == 0 {
		return Frontier{}, nil
	}
	hs, err := r.ReadHashes(idx)
	if err != nil {
		return Frontier{}, fmt.Errorf("audit: reading the right edge of tree size %d: %w", n, err)
	}
	if len(hs) != len(idx) {
		return Frontier{}, fmt.Errorf("audit: reading the right edge of tree size %d: got %d hashes for %d indexes", n, len(hs), len(idx))
	}
	return Frontier{n: n, hashes: hs}, nil
}

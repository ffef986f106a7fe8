package audit

import (
	"crypto/sha256"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// MaxTreeSize is the largest tree size this package handles. Beyond it the
// size arithmetic of golang.org/x/mod/sumdb/tlog (v0.43.0) overflows and
// loops forever, so larger sizes, which no real log reaches, are rejected
// wherever a size enters: checkpoints, proof files, entry seqs and the
// functions below.
const MaxTreeSize int64 = 1<<62 - 1

func checkTreeSize(n int64) error {
	if n < 0 || n > MaxTreeSize {
		return fmt.Errorf("audit: tree size %d is outside 0..%d", n, MaxTreeSize)
	}
	return nil
}

// EmptyRoot is the root hash of the empty tree, SHA-256 of the empty string
// (RFC 6962 §2.1: MTH({}) = SHA-256()).
var EmptyRoot = tlog.Hash(sha256.Sum256(nil))

// LeafHash returns the RFC 6962 leaf hash of an entry's canonical bytes:
// SHA-256(0x00 ‖ entry).
func LeafHash(entry []byte) tlog.Hash { return tlog.RecordHash(entry) }

// NodeHash returns the RFC 6962 interior node hash SHA-256(0x01 ‖ left ‖ right).
func NodeHash(left, right tlog.Hash) tlog.Hash { return tlog.NodeHash(left, right) }

// The functions below work over a [tlog.HashReader], which serves the
// "stored hashes" of a tree ([tlog.StoredHashIndex] gives their layout: the
// hashes of all complete subtrees, appended as leaves arrive, as
// [tlog.StoredHashes] computes them). A store that keeps those hashes can
// answer for any tree size up to the number of leaves it holds.

// StoredHashes returns the hashes a store must save when it appends entry
// as leaf index (the next leaf), to be stored starting at
// tlog.StoredHashIndex(0, index): the leaf hash, then the root of each
// subtree the leaf completes. It reads up to log2(index) earlier hashes
// from r.
func StoredHashes(index int64, entry []byte, r tlog.HashReader) ([]tlog.Hash, error) {
	if index < 0 || index >= MaxTreeSize {
		return nil, fmt.Errorf("audit: leaf index %d is outside 0..%d", index, MaxTreeSize-1)
	}
	hs, err := tlog.StoredHashes(index, entry, r)
	if err != nil {
		return nil, fmt.Errorf("audit: computing stored hashes of leaf %d: %w", index, err)
	}
	return hs, nil
}

// TreeRoot returns the RFC 6962 root of the first n leaves. TreeRoot(0, r)
// is [EmptyRoot].
func TreeRoot(n int64, r tlog.HashReader) (tlog.Hash, error) {
	if err := checkTreeSize(n); err != nil {
		return tlog.Hash{}, err
	}
	h, err := tlog.TreeHash(n, r)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: computing root of tree size %d: %w", n, err)
	}
	return h, nil
}

// ProveInclusion returns the RFC 6962 audit path proving that leaf index is
// in the tree of size n (0 <= index < n).
func ProveInclusion(index, n int64, r tlog.HashReader) (tlog.RecordProof, error) {
	if err := checkTreeSize(n); err != nil {
		return nil, err
	}
	if index < 0 || index >= n {
		return nil, fmt.Errorf("audit: no inclusion proof for leaf %d in a tree of size %d: need 0 <= leaf < size", index, n)
	}
	p, err := tlog.ProveRecord(n, index, r)
	if err != nil {
		return nil, fmt.Errorf("audit: proving leaf %d in tree size %d: %w", index, n, err)
	}
	return p, nil
}

// CheckInclusion checks that proof shows the leaf with hash leaf at index to
// be part of the tree of size n whose root is root.
//
// The audit path alone does not pin the tree size: the path of leaf 0 in a
// tree of 3 leaves also leads to that same root when checked as a tree of 4.
// Take n and root together from one authenticated checkpoint.
func CheckInclusion(proof tlog.RecordProof, index, n int64, root, leaf tlog.Hash) error {
	if err := checkTreeSize(n); err != nil {
		return err
	}
	if index < 0 || index >= n {
		return fmt.Errorf("audit: leaf %d cannot be in a tree of size %d", index, n)
	}
	if err := tlog.CheckRecord(proof, n, root, index, leaf); err != nil {
		return fmt.Errorf("audit: inclusion proof (%d hashes) does not lead from leaf %d to the root %s of tree size %d", len(proof), index, root, n)
	}
	return nil
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// size m is a prefix of the tree of size n (0 <= m <= n). The proof is empty
// when m is 0 or m == n.
func ProveConsistency(m, n int64, r tlog.HashReader) (tlog.TreeProof, error) {
	if err := checkTreeSize(n); err != nil {
		return nil, err
	}
	if m < 0 || m > n {
		return nil, fmt.Errorf("audit: no consistency proof from tree size %d to %d: need 0 <= old <= new", m, n)
	}
	if m == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(n, m, r)
	if err != nil {
		return nil, fmt.Errorf("audit: proving tree size %d consistent with %d: %w", m, n, err)
	}
	return p, nil
}

// CheckConsistency checks that proof shows the tree of size m with root
// oldRoot to be a prefix of the tree of size n with root newRoot. For m == 0
// the proof must be empty and oldRoot must be [EmptyRoot]; for m == n the
// proof must be empty and the roots equal.
func CheckConsistency(proof tlog.TreeProof, m int64, oldRoot tlog.Hash, n int64, newRoot tlog.Hash) error {
	if err := checkTreeSize(n); err != nil {
		return err
	}
	if m < 0 || m > n {
		return fmt.Errorf("audit: tree size %d cannot be a prefix of tree size %d", m, n)
	}
	if m == 0 {
		if oldRoot != EmptyRoot {
			return fmt.Errorf("audit: root %s given for the empty tree, which has root %s", oldRoot, EmptyRoot)
		}
		if len(proof) != 0 {
			return fmt.Errorf("audit: consistency proof from the empty tree must be empty, has %d hashes", len(proof))
		}
		return nil
	}
	if err := tlog.CheckTree(proof, n, newRoot, m, oldRoot); err != nil {
		return fmt.Errorf("audit: consistency proof (%d hashes) does not show tree size %d (root %s) to be a prefix of tree size %d (root %s)",
			len(proof), m, oldRoot, n, newRoot)
	}
	return nil
}

// MemoryTree is an in-memory Merkle tree holding the tlog stored hashes of
// its leaves. It implements [tlog.HashReader]. The zero value is an empty
// tree ready to use. It is not safe for concurrent use.
type MemoryTree struct {
	stored []tlog.Hash
	size   int64
}

// Append adds an entry's bytes as the next leaf and returns its index.
func (t *MemoryTree) Append(entry []byte) (int64, error) {
	return t.AppendLeafHash(LeafHash(entry))
}

// AppendLeafHash adds a leaf given its leaf hash and returns its index.
func (t *MemoryTree) AppendLeafHash(leaf tlog.Hash) (int64, error) {
	hashes, err := tlog.StoredHashesForRecordHash(t.size, leaf, t)
	if err != nil {
		return 0, fmt.Errorf("audit: appending leaf %d: %w", t.size, err)
	}
	t.stored = append(t.stored, hashes...)
	t.size++
	return t.size - 1, nil
}

// Size returns the number of leaves.
func (t *MemoryTree) Size() int64 { return t.size }

// ReadHashes implements [tlog.HashReader].
func (t *MemoryTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.stored)) {
			return nil, fmt.Errorf("audit: stored hash %d does not exist (tree of %d leaves has %d stored hashes)", x, t.size, len(t.stored))
		}
		out[i] = t.stored[x]
	}
	return out, nil
}

func (t *MemoryTree) checkSize(n int64) error {
	if n < 0 || n > t.size {
		return fmt.Errorf("audit: tree size %d requested from a tree of %d leaves", n, t.size)
	}
	return nil
}

// Root returns the root of the first n leaves (0 <= n <= Size()).
func (t *MemoryTree) Root(n int64) (tlog.Hash, error) {
	if err := t.checkSize(n); err != nil {
		return tlog.Hash{}, err
	}
	return TreeRoot(n, t)
}

// InclusionProof proves leaf index in the tree of the first n leaves.
func (t *MemoryTree) InclusionProof(index, n int64) (tlog.RecordProof, error) {
	if err := t.checkSize(n); err != nil {
		return nil, err
	}
	return ProveInclusion(index, n, t)
}

// ConsistencyProof proves the first m leaves a prefix of the first n.
func (t *MemoryTree) ConsistencyProof(m, n int64) (tlog.TreeProof, error) {
	if err := t.checkSize(n); err != nil {
		return nil, err
	}
	return ProveConsistency(m, n, t)
}

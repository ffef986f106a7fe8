package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ProofVersion is the format version written in an inclusion proof file's
// "v" member.
const ProofVersion = 1

// maxProofHashes is the longest audit path of a tree with fewer than 2^63
// leaves.
const maxProofHashes = 63

// InclusionProof is a self-contained, portable proof that one entry is in a
// log: the log's signed checkpoint, the entry's canonical bytes and the RFC
// 6962 audit path from the entry's leaf to the checkpoint's root. Anyone with
// the log's public key(s) can check it offline ([VerifyInclusionProof]).
//
// # File format
//
// A proof file is one JSON object (RFC 8259, UTF-8) with exactly these
// members, in any order, each exactly once:
//
//	"v"           1
//	"origin"      string: the checkpoint's origin line
//	"checkpoint"  string: the complete signed checkpoint note (body, blank
//	              line, signature lines), see [Checkpoint.Body] and
//	              [SignCheckpoint]
//	"seq"         integer: the entry's sequence number
//	"leaf_index"  integer: the entry's leaf index, always equal to "seq"
//	              (present so that generic RFC 6962 tools need not decode
//	              the entry)
//	"tree_size"   integer: the checkpoint's tree size, > leaf_index,
//	              at most MaxTreeSize
//	"entry"       string: the entry's canonical bytes (see [Entry]); these
//	              are valid UTF-8, so a JSON string carries them exactly
//	"proof"       array of strings: the audit path, leaf side first, each
//	              hash in standard padded base64 (44 characters); empty
//	              when tree_size is 1
//
// Integers are written in plain decimal (no sign, fraction, exponent or
// leading zeros). To verify: check the checkpoint's signature, compare origin
// and tree_size with the checkpoint, compute the leaf hash
// SHA-256(0x00 ‖ entry) and run the audit path (RFC 6962 §2.1.1, RFC 9162
// §2.1.3.2) to the checkpoint's root.
type InclusionProof struct {
	Origin     string
	Checkpoint []byte // signed note
	Seq        int64
	LeafIndex  int64
	TreeSize   int64
	Entry      []byte // canonical entry bytes
	Proof      tlog.RecordProof
}

// VerifiedInclusion is what a successfully verified inclusion proof shows.
type VerifiedInclusion struct {
	Entry      Entry
	Checkpoint Checkpoint
	SignedBy   KeyID
}

// NewInclusionProof builds the inclusion proof of entry (canonical bytes, as
// stored) under a signed checkpoint, reading the audit path from r, which
// must hold the stored hashes of at least the checkpoint's tree size leaves.
// The entry's seq is its leaf index. The checkpoint's signature is not
// checked here, but the proof is checked against its root before being
// returned, so a proof for the wrong entry, tree or checkpoint is never
// produced.
func NewInclusionProof(signedCheckpoint, entry []byte, r tlog.HashReader) (*InclusionProof, error) {
	if !utf8.Valid(signedCheckpoint) {
		return nil, fmt.Errorf("audit: signed checkpoint is not valid UTF-8")
	}
	text, ok := splitNote(signedCheckpoint)
	if !ok {
		return nil, fmt.Errorf("audit: %w: no blank line between body and signatures", ErrMalformedNote)
	}
	cp, err := ParseCheckpoint(text)
	if err != nil {
		return nil, err
	}
	e, err := Unmarshal(entry)
	if err != nil {
		return nil, fmt.Errorf("audit: entry to prove: %w", err)
	}
	index := int64(e.Seq)
	if index >= cp.Size {
		return nil, fmt.Errorf("audit: entry seq %d is not covered by the checkpoint of tree size %d", index, cp.Size)
	}
	path, err := ProveInclusion(index, cp.Size, r)
	if err != nil {
		return nil, err
	}
	if err := CheckInclusion(path, index, cp.Size, cp.Root, LeafHash(entry)); err != nil {
		return nil, fmt.Errorf("audit: stored tree does not match the checkpoint or the entry: %w", err)
	}
	return &InclusionProof{
		Origin:     cp.Origin,
		Checkpoint: bytes.Clone(signedCheckpoint),
		Seq:        index,
		LeafIndex:  index,
		TreeSize:   cp.Size,
		Entry:      bytes.Clone(entry),
		Proof:      path,
	}, nil
}

type proofFile struct {
	V          int      `json:"v"`
	Origin     string   `json:"origin"`
	Checkpoint string   `json:"checkpoint"`
	Seq        int64    `json:"seq"`
	LeafIndex  int64    `json:"leaf_index"`
	TreeSize   int64    `json:"tree_size"`
	Entry      string   `json:"entry"`
	Proof      []string `json:"proof"`
}

// Marshal encodes p in the file format described at [InclusionProof],
// indented for reading and ending in a newline.
func (p *InclusionProof) Marshal() ([]byte, error) {
	f := proofFile{
		V:          ProofVersion,
		Origin:     p.Origin,
		Checkpoint: string(p.Checkpoint),
		Seq:        p.Seq,
		LeafIndex:  p.LeafIndex,
		TreeSize:   p.TreeSize,
		Entry:      string(p.Entry),
		Proof:      make([]string, len(p.Proof)),
	}
	for i, h := range p.Proof {
		f.Proof[i] = h.String()
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("audit: encoding inclusion proof: %w", err)
	}
	return b.Bytes(), nil
}

// ParseInclusionProof parses a proof file strictly: the JSON must be
// well-formed with no duplicate members, every member listed at
// [InclusionProof] must be present with the right type, no other member may
// be, and the numbers and hashes must be well-formed and mutually consistent
// (seq == leaf_index < tree_size, at most 63 hashes). It does not verify the
// proof. Errors are [*VerifyError]s of [KindMalformed] wrapping
// [ErrMalformedProof].
func ParseInclusionProof(b []byte) (*InclusionProof, error) {
	bad := func(format string, args ...any) (*InclusionProof, error) {
		return nil, verifyErr(NoSeq, KindMalformed, ErrMalformedProof, "inclusion proof: "+format, args...)
	}
	// CanonicalJSON checks the syntax and rejects duplicate members, which
	// encoding/json would silently resolve.
	canon, err := CanonicalJSON(b)
	if err != nil {
		return bad("not valid JSON: %v", err)
	}
	if len(canon) == 0 || canon[0] != '{' {
		return bad("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(canon, &m); err != nil {
		return bad("not a JSON object: %v", err)
	}
	for _, k := range []string{"v", "origin", "checkpoint", "seq", "leaf_index", "tree_size", "entry", "proof"} {
		if _, ok := m[k]; !ok {
			return bad("member %q is missing", k)
		}
	}
	if len(m) != 8 {
		for k := range m {
			switch k {
			case "v", "origin", "checkpoint", "seq", "leaf_index", "tree_size", "entry", "proof":
			default:
				return bad("unknown member %q", k)
			}
		}
	}
	if v := string(m["v"]); v != strconv.Itoa(ProofVersion) {
		return bad("\"v\" is %s, this build reads version %d", v, ProofVersion)
	}
	var p InclusionProof
	str := func(name string) (string, error) {
		raw := m[name]
		var s string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return "", fmt.Errorf("%q is not a string", name)
		}
		return s, nil
	}
	num := func(name string) (int64, error) {
		s := string(m[name])
		if s == "" || len(s) > 1 && s[0] == '0' {
			return 0, fmt.Errorf("%q is %s, not a plain non-negative integer", name, s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, fmt.Errorf("%q is %s, not a plain non-negative integer", name, s)
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is %s, which does not fit in 63 bits", name, s)
		}
		return n, nil
	}
	if p.Origin, err = str("origin"); err != nil {
		return bad("%v", err)
	}
	if err := checkKeyName(p.Origin); err != nil {
		return bad("\"origin\": %v", err)
	}
	cp, err := str("checkpoint")
	if err != nil {
		return bad("%v", err)
	}
	if cp == "" {
		return bad("\"checkpoint\" is empty")
	}
	p.Checkpoint = []byte(cp)
	entry, err := str("entry")
	if err != nil {
		return bad("%v", err)
	}
	if entry == "" {
		return bad("\"entry\" is empty")
	}
	p.Entry = []byte(entry)
	if p.Seq, err = num("seq"); err != nil {
		return bad("%v", err)
	}
	if p.LeafIndex, err = num("leaf_index"); err != nil {
		return bad("%v", err)
	}
	if p.TreeSize, err = num("tree_size"); err != nil {
		return bad("%v", err)
	}
	if p.LeafIndex != p.Seq {
		return bad("\"leaf_index\" %d differs from \"seq\" %d", p.LeafIndex, p.Seq)
	}
	if p.TreeSize > MaxTreeSize {
		return bad("\"tree_size\" %d exceeds the largest supported tree size %d", p.TreeSize, MaxTreeSize)
	}
	if p.LeafIndex >= p.TreeSize {
		return bad("\"leaf_index\" %d is not below \"tree_size\" %d", p.LeafIndex, p.TreeSize)
	}
	raw := m["proof"]
	var hashes []string
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &hashes) != nil {
		return bad("\"proof\" is not an array of strings")
	}
	if len(hashes) > maxProofHashes {
		return bad("\"proof\" has %d hashes, no tree of 63-bit size needs more than %d", len(hashes), maxProofHashes)
	}
	p.Proof = make(tlog.RecordProof, len(hashes))
	for i, s := range hashes {
		h, err := parseHash(s)
		if err != nil {
			return bad("\"proof\"[%d]: %v", i, err)
		}
		p.Proof[i] = h
	}
	return &p, nil
}

// Verify checks p against a set of trusted keys (see [OpenCheckpoint]) and
// returns the proven entry. Errors are [*VerifyError]s: those of
// [OpenCheckpoint] for the checkpoint; [KindProofInvalid] when origin or
// tree_size contradict the checkpoint or the audit path does not lead from
// the entry to the checkpoint's root (the entry or the path was altered);
// [KindMalformed] when the proven entry does not decode; [KindReordered] when
// the proven entry's own seq differs from its leaf index.
func (p *InclusionProof) Verify(verifiers note.Verifiers) (*VerifiedInclusion, error) {
	cp, key, err := OpenCheckpoint(p.Checkpoint, verifiers)
	if err != nil {
		return nil, err
	}
	if cp.Origin != p.Origin {
		return nil, verifyErr(p.Seq, KindProofInvalid, nil,
			"proof names origin %q but its checkpoint is for %q", p.Origin, cp.Origin)
	}
	if cp.Size != p.TreeSize {
		return nil, verifyErr(p.Seq, KindProofInvalid, nil,
			"proof names tree size %d but its checkpoint has tree size %d", p.TreeSize, cp.Size)
	}
	if err := CheckInclusion(p.Proof, p.LeafIndex, p.TreeSize, cp.Root, LeafHash(p.Entry)); err != nil {
		return nil, verifyErr(p.Seq, KindProofInvalid, err,
			"entry and audit path do not lead to the root of %q at tree size %d: the entry or the proof was altered",
			cp.Origin, cp.Size)
	}
	e, err := Unmarshal(p.Entry)
	if err != nil {
		return nil, verifyErr(p.Seq, KindMalformed, err, "the proven entry does not decode: %v", err)
	}
	if int64(e.Seq) != p.LeafIndex {
		return nil, verifyErr(p.LeafIndex, KindReordered, nil,
			"the entry at leaf index %d records seq %d", p.LeafIndex, e.Seq)
	}
	return &VerifiedInclusion{Entry: e, Checkpoint: cp, SignedBy: key}, nil
}

// VerifyInclusionProof parses a proof file ([ParseInclusionProof]) and
// verifies it ([InclusionProof.Verify]).
func VerifyInclusionProof(proofJSON []byte, verifiers note.Verifiers) (*VerifiedInclusion, error) {
	p, err := ParseInclusionProof(proofJSON)
	if err != nil {
		return nil, err
	}
	return p.Verify(verifiers)
}

// VerifyConsistency checks that the log as of checkpoint cur contains the
// log as of the older checkpoint old as a prefix, using a consistency proof
// from old.Size to cur.Size (see [ProveConsistency]). Both checkpoints must
// already be authenticated ([OpenCheckpoint]); origins are not compared.
// Errors are [*VerifyError]s: [KindRollback] when cur is smaller than old,
// [KindFork] when the proof fails (the history old committed to was
// rewritten, or the proof is wrong).
func VerifyConsistency(old, cur Checkpoint, proof tlog.TreeProof) error {
	if old.Size > cur.Size {
		return verifyErr(cur.Size, KindRollback, nil,
			"log %q has tree size %d, smaller than the %d of an earlier checkpoint", cur.Origin, cur.Size, old.Size)
	}
	if err := CheckConsistency(proof, old.Size, old.Root, cur.Size, cur.Root); err != nil {
		return verifyErr(NoSeq, KindFork, err,
			"tree size %d (root %s) is not a prefix of tree size %d (root %s)", old.Size, old.Root, cur.Size, cur.Root)
	}
	return nil
}

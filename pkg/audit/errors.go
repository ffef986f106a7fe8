package audit

import (
	"errors"
	"fmt"
)

// Kind classifies what a verification found wrong.
//
// A Kind is itself an error value, so callers can test for a class of failure
// with errors.Is:
//
//	if errors.Is(err, audit.KindRollback) { ... }
type Kind int

const (
	// KindContentChanged: an entry's bytes are not the bytes that were
	// logged (it fails to decode canonically, its leaf hash differs from
	// the stored one, or the entries no longer hash to a signed root).
	KindContentChanged Kind = iota + 1
	// KindMissingEntry: a sequence number is absent from the log.
	KindMissingEntry
	// KindReordered: an entry appears out of sequence order, or twice.
	KindReordered
	// KindSignatureInvalid: a known key's signature on a checkpoint does
	// not verify (the checkpoint body or the signature was altered).
	KindSignatureInvalid
	// KindUnknownKey: a checkpoint carries no signature from any trusted key.
	KindUnknownKey
	// KindRollback: the log is shorter than a checkpoint says it was.
	KindRollback
	// KindFork: the log's tree at some size has a different root than a
	// checkpoint of that size, as shown by a failed consistency proof.
	KindFork
	// KindProofInvalid: an inclusion proof does not lead from its entry to
	// its checkpoint's root, or contradicts its checkpoint.
	KindProofInvalid
	// KindMalformed: input could not be parsed at all (signed note,
	// checkpoint body, proof file).
	KindMalformed
	// KindStoredHashChanged: a hash of the stored tree (a cached leaf or
	// interior hash) was edited, while the entries themselves still hash
	// to what was signed.
	KindStoredHashChanged
	// KindCopyChanged: a copy a store keeps beside an entry (an indexed
	// column) disagrees with the entry, which is as signed.
	KindCopyChanged
	// KindWitnessMissing: the log has signed checkpoints but its witness
	// copy is gone, so a rollback could no longer be seen.
	KindWitnessMissing
)

var kindNames = map[Kind]string{
	KindContentChanged:    "content changed",
	KindMissingEntry:      "missing entry",
	KindReordered:         "reordered",
	KindSignatureInvalid:  "signature invalid",
	KindUnknownKey:        "unknown key",
	KindRollback:          "rollback",
	KindFork:              "fork",
	KindProofInvalid:      "proof invalid",
	KindMalformed:         "malformed",
	KindStoredHashChanged: "stored hash changed",
	KindCopyChanged:       "column copy changed",
	KindWitnessMissing:    "witness missing",
}

// String returns the human-readable name of k, e.g. "missing entry".
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error makes a Kind usable as an errors.Is target.
func (k Kind) Error() string { return k.String() }

// NoSeq is the Seq of a [VerifyError] that is not about one particular entry
// (a checkpoint signature, a proof file's syntax).
const NoSeq int64 = -1

// VerifyError reports the first problem a verification found.
//
// Seq is the first sequence number known to be bad, or [NoSeq]. For problems
// that can only be located to a range of entries (the entries no longer hash
// to a signed root) Seq is the lowest sequence number of that range and
// Detail names the range.
type VerifyError struct {
	Seq    int64
	Kind   Kind
	Detail string
	// Err is the underlying cause, if any (for example [ErrMalformedNote],
	// [ErrMalformedCheckpoint], or an entry decoding error).
	Err error
	// hi bounds, for a divergence from a signed root, the range it lies
	// in: [Seq, hi).
	hi int64
}

func (e *VerifyError) Error() string {
	if e.Seq >= 0 {
		return fmt.Sprintf("audit: seq %d: %s: %s", e.Seq, e.Kind, e.Detail)
	}
	return fmt.Sprintf("audit: %s: %s", e.Kind, e.Detail)
}

// Unwrap returns the underlying cause.
func (e *VerifyError) Unwrap() error { return e.Err }

// Is reports whether target is e's Kind.
func (e *VerifyError) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

func verifyErr(seq int64, kind Kind, cause error, format string, args ...any) *VerifyError {
	return &VerifyError{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...), Err: cause}
}

// Causes carried in [VerifyError.Err], for telling apart the two ways a
// checkpoint can be [KindMalformed].
var (
	// ErrMalformedNote: the signed note envelope (body, blank line,
	// signature lines) is not well-formed.
	ErrMalformedNote = errors.New("malformed signed note")
	// ErrMalformedCheckpoint: the note verified but its body is not a
	// checkpoint in the format described at [Checkpoint.Body].
	ErrMalformedCheckpoint = errors.New("malformed checkpoint body")
	// ErrMalformedProof: an inclusion proof file is not in the format
	// described at [InclusionProof].
	ErrMalformedProof = errors.New("malformed inclusion proof")
)

// Package audit implements the pure, storage-free core of agentmesh's
// tamper-evident audit log: the entry format, RFC 6962 Merkle tree hashing,
// signed checkpoints, portable inclusion proofs and whole-log verification.
//
// Every governed tool call (and every identity, key, policy or trust event)
// becomes one [Entry]. Entries are appended to a Merkle tree whose root is
// periodically signed as a checkpoint. Anyone holding a checkpoint can later
// check that the log still contains exactly what it contained when the
// checkpoint was signed, and a single entry can be proven to be in the log
// without revealing the others.
//
// # Formats
//
// Entry (entry.go, canonjson.go): a JSON object with a fixed field order and a
// single canonical byte encoding; [Unmarshal] rejects every other encoding of
// the same data, so each byte of a stored entry is covered by its leaf hash.
//
// Tree (hash.go): the Merkle Tree Hash of RFC 6962 §2.1 (identical in RFC 9162
// §2.1.1): leaf hash SHA-256(0x00 ‖ entry bytes), interior node hash
// SHA-256(0x01 ‖ left ‖ right), the empty tree hashes to SHA-256(""). Leaf i
// of the tree is the entry whose seq is i. Inclusion ("audit path") and
// consistency proofs are those of RFC 6962 §2.1.1 and §2.1.2, as produced and
// checked by golang.org/x/mod/sumdb/tlog, whose "stored hashes" layout
// ([tlog.StoredHashIndex]) is what a persistent store keeps.
//
// Checkpoint (checkpoint.go, keys.go): a C2SP tlog-checkpoint
// (https://c2sp.org/tlog-checkpoint) body, with one extension line carrying
// the signing time, signed as a C2SP signed note
// (https://c2sp.org/signed-note) with an Ed25519 key
// (golang.org/x/mod/sumdb/note).
//
// Inclusion proof file (proof.go): a small JSON document holding a signed
// checkpoint, one entry and its audit path, verifiable offline with nothing
// but the log's public key(s). See [InclusionProof].
//
// Verification (verify.go): [VerifyEntries] replays a whole log from its
// entries, in constant memory, and reports the first problem as a
// [*VerifyError] carrying the sequence number and a [Kind].
//
// References:
//   - RFC 6962, Certificate Transparency, §2.1 Merkle Hash Trees.
//   - RFC 9162, Certificate Transparency Version 2.0, §2.1.
//   - C2SP tlog-checkpoint: https://c2sp.org/tlog-checkpoint
//   - C2SP signed-note: https://c2sp.org/signed-note
//   - RFC 8785 (JSON Canonicalization Scheme), whose string escaping rules
//     the entry encoding follows.
package audit

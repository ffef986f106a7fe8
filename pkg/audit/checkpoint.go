package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement of a log's tree size and root hash.
//
// Origin identifies the log; agentmesh uses "agentmesh/<agent DID>/<key
// fingerprint>", but any string valid as a signed-note key name is accepted
// (non-empty UTF-8 without spaces, '+' or control characters). Time, when
// not zero, is when the checkpoint was made; it is stored to the microsecond.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Time   time.Time
}

// timePrefix starts the one extension line agentmesh defines.
const timePrefix = "time "

// Validate checks that c can be encoded: a valid origin, a size in
// 0..[MaxTreeSize] and, if set, a time in years 0001..9999.
func (c Checkpoint) Validate() error {
	if err := checkKeyName(c.Origin); err != nil {
		return fmt.Errorf("checkpoint origin: %w", err)
	}
	if c.Size < 0 || c.Size > MaxTreeSize {
		return fmt.Errorf("checkpoint tree size %d is outside 0..%d", c.Size, MaxTreeSize)
	}
	if !c.Time.IsZero() {
		if err := checkTime(c.Time); err != nil {
			return fmt.Errorf("checkpoint time %w", err)
		}
	}
	return nil
}

// Body returns the checkpoint's note text in C2SP tlog-checkpoint format,
// each line ending in a newline (U+000A):
//
//	<origin>
//	<tree size: ASCII decimal, no sign, no leading zeros ("0" when empty)>
//	<root hash: 44 characters of standard, padded base64 (RFC 4648 §4)>
//	time <FormatTimestamp(Time)>          (only when Time is not zero)
//
// The fourth line is a tlog-checkpoint extension line. Body does not
// validate c; [SignCheckpoint] does.
func (c Checkpoint) Body() []byte {
	var b bytes.Buffer
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatInt(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(c.Root[:]))
	b.WriteByte('\n')
	if !c.Time.IsZero() {
		b.WriteString(timePrefix)
		b.WriteString(FormatTimestamp(c.Time))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseCheckpoint parses a checkpoint body, accepting exactly the output of
// [Checkpoint.Body] for a valid checkpoint: three or four lines, each ending
// in a newline, with no blank lines, no other extension lines, no
// whitespace around values, a decimal size without leading zeros of at most
// [MaxTreeSize], and a root that is the canonical base64 encoding of 32 bytes.
// Errors are [*VerifyError]s of [KindMalformed] wrapping
// [ErrMalformedCheckpoint].
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, verifyErr(NoSeq, KindMalformed, ErrMalformedCheckpoint, "checkpoint body: "+format, args...)
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return bad("does not end in a newline")
	}
	lines := strings.Split(string(body[:len(body)-1]), "\n")
	if len(lines) < 3 {
		return bad("has %d lines, want origin, tree size and root hash", len(lines))
	}
	if len(lines) > 4 {
		return bad("has %d lines, want at most 4 (origin, tree size, root hash, time)", len(lines))
	}
	var c Checkpoint

	c.Origin = lines[0]
	if err := checkKeyName(c.Origin); err != nil {
		return bad("line 1 (origin): %v", err)
	}

	size := lines[1]
	if size == "" || strings.Trim(size, "0123456789") != "" {
		return bad("line 2 (tree size) %q is not a decimal number", size)
	}
	if len(size) > 1 && size[0] == '0' {
		return bad("line 2 (tree size) %q has a leading zero", size)
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n > MaxTreeSize {
		return bad("line 2 (tree size) %q exceeds the largest supported tree size %d", size, MaxTreeSize)
	}
	c.Size = n

	root, err := parseHash(lines[2])
	if err != nil {
		return bad("line 3 (root hash): %v", err)
	}
	c.Root = root

	if len(lines) == 4 {
		ext := lines[3]
		ts, ok := strings.CutPrefix(ext, timePrefix)
		if !ok {
			return bad("line 4 %q is not a \"time <timestamp>\" extension line", ext)
		}
		t, err := ParseTimestamp(ts)
		if err != nil {
			return bad("line 4 (time): %v", err)
		}
		if err := checkTime(t); err != nil {
			return bad("line 4 (time) %v", err)
		}
		c.Time = t
	}
	return c, nil
}

// parseHash decodes the canonical standard-base64 encoding of a 32-byte hash.
func parseHash(s string) (tlog.Hash, error) {
	if len(s) != 44 {
		return tlog.Hash{}, fmt.Errorf("%q is %d characters, want 44 characters of base64 encoding 32 bytes", s, len(s))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("%q is not the standard base64 encoding of 32 bytes", s)
	}
	return tlog.Hash(b), nil
}

// SignCheckpoint validates c and returns its body signed as a C2SP signed
// note: the body, a blank line, and the line "— <key name> <base64(key hash
// ‖ Ed25519 signature of the body)>".
func SignCheckpoint(c Checkpoint, signer note.Signer) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("audit: cannot sign checkpoint: %w", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Body())}, signer)
	if err != nil {
		return nil, fmt.Errorf("audit: signing checkpoint for %q at size %d: %w", c.Origin, c.Size, err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint against a set of trusted keys
// (build it with note.VerifierList from [NewVerifier]s; include rotated-out
// keys to accept checkpoints they signed) and parses its body. It returns the
// checkpoint and the first trusted key that signed it. Signatures by unknown
// keys (witnesses, for example) are ignored as long as one trusted key
// signed. Errors are [*VerifyError]s:
//
//   - [KindMalformed] wrapping [ErrMalformedNote]: not a signed note;
//   - [KindUnknownKey]: well-formed, but signed by no trusted key;
//   - [KindSignatureInvalid]: a trusted key's signature does not verify (the
//     body or the signature was changed after signing);
//   - [KindMalformed] wrapping [ErrMalformedCheckpoint]: validly signed,
//     but the body is not a checkpoint (see [ParseCheckpoint]).
//
// OpenCheckpoint does not compare the origin with the key name; callers that
// know which log they expect should check Origin.
func OpenCheckpoint(msg []byte, verifiers note.Verifiers) (Checkpoint, KeyID, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			var keys []string
			for _, s := range unverified.Note.UnverifiedSigs {
				keys = append(keys, KeyID{s.Name, s.Hash}.String())
			}
			return Checkpoint{}, KeyID{}, verifyErr(NoSeq, KindUnknownKey, err,
				"checkpoint is signed only by keys not in the trusted set: %s", strings.Join(keys, ", "))
		case errors.As(err, &invalid):
			return Checkpoint{}, KeyID{}, verifyErr(NoSeq, KindSignatureInvalid, err,
				"checkpoint signature by trusted key %s does not verify: the checkpoint or its signature was altered",
				KeyID{invalid.Name, invalid.Hash})
		default:
			return Checkpoint{}, KeyID{}, verifyErr(NoSeq, KindMalformed, errors.Join(ErrMalformedNote, err),
				"signed checkpoint: %v (want body, blank line, then lines \"— <key name> <base64 signature>\")", err)
		}
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, KeyID{}, err
	}
	return c, KeyID{n.Sigs[0].Name, n.Sigs[0].Hash}, nil
}

// splitNote returns the text of a signed note without verifying anything.
func splitNote(msg []byte) ([]byte, bool) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil, false
	}
	return msg[:i+1], true
}

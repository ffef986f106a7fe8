package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testAgent = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"

// testKey returns a deterministic Ed25519 key.
func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func testOrigin(seed byte) string {
	pub := testKey(seed).Public().(ed25519.PublicKey)
	return "agentmesh/" + testAgent + "/" + hex.EncodeToString(pub[:8])
}

func testSigner(t testing.TB, seed byte) note.Signer {
	t.Helper()
	s, err := NewSigner(testOrigin(seed), testKey(seed))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testVerifier(t testing.TB, seed byte) note.Verifier {
	t.Helper()
	v, err := NewVerifier(testOrigin(seed), testKey(seed).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var testEpoch = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// sampleEntry returns a plausible entry; its shape varies with seq so that
// logs built from it exercise the optional members.
func sampleEntry(seq uint64) Entry {
	e := Entry{
		Seq:       seq,
		Timestamp: testEpoch.Add(time.Duration(seq) * 1500 * time.Microsecond),
		Agent:     testAgent,
		Action:    ActionToolInvocation,
		Tool:      "filesystem.read_file",
		Params:    json.RawMessage(fmt.Sprintf(`{"path":"/srv/data/report-%d.csv","limit":%d}`, seq, seq%7)),
		Result:    ResultAllowed,
		Client:    "claude-desktop",
		Upstream:  "fs-server",
	}
	score := int(seq % 100)
	e.TrustScore = &score
	e.DurationUS = int64(100 + seq%1000)
	switch seq % 5 {
	case 1:
		e.Result = ResultBlocked
		e.Reason = "path outside allowed roots"
		e.Rules = []string{"fs-roots", "deny-secrets"}
		enforced := true
		e.Enforced = &enforced
	case 2:
		intent := seq - 1 // its write-ahead tool_intent entry
		e.Intent = &intent
	case 3:
		e.Action = ActionTrustChanged
		e.Tool, e.Params, e.Result, e.Client, e.Upstream = "", nil, "", "", ""
		e.TrustScore, e.DurationUS = nil, 0
		e.Details = json.RawMessage(fmt.Sprintf(`{"from":%d,"to":%d}`, seq%100, (seq+1)%100))
	}
	return e
}

func mustMarshal(t testing.TB, e Entry) []byte {
	t.Helper()
	b, err := Marshal(e)
	if err != nil {
		t.Fatalf("Marshal(seq %d): %v", e.Seq, err)
	}
	return b
}

// buildLog returns n canonical entries and their tree.
func buildLog(t testing.TB, n int) ([][]byte, *MemoryTree) {
	t.Helper()
	entries := make([][]byte, n)
	tree := &MemoryTree{}
	for i := range entries {
		entries[i] = mustMarshal(t, sampleEntry(uint64(i)))
		if _, err := tree.Append(entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	return entries, tree
}

func checkpointAt(t testing.TB, tree *MemoryTree, origin string, n int64) Checkpoint {
	t.Helper()
	root, err := tree.Root(n)
	if err != nil {
		t.Fatal(err)
	}
	return Checkpoint{Origin: origin, Size: n, Root: root, Time: testEpoch.Add(time.Duration(n) * time.Second)}
}

func sliceSeq(entries [][]byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for _, b := range entries {
			if !yield(b, nil) {
				return
			}
		}
	}
}

// wantVerifyError checks that err is a *VerifyError of the given kind and seq.
func wantVerifyError(t *testing.T, err error, kind Kind, seq int64) *VerifyError {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("got error %v (%T), want a *VerifyError of kind %q", err, err, kind)
	}
	if ve.Kind != kind || ve.Seq != seq {
		t.Fatalf("got %q at seq %d (%v), want %q at seq %d", ve.Kind, ve.Seq, err, kind, seq)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("errors.Is(%v, %q) = false", err, kind)
	}
	return ve
}

func mustHash(t testing.TB, s string) tlog.Hash {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		t.Fatalf("bad hex hash %q", s)
	}
	return tlog.Hash(b)
}

func hexHash(h tlog.Hash) string { return hex.EncodeToString(h[:]) }

package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func TestNoteKeysKnownAnswer(t *testing.T) {
	// The example key and signature from the golang.org/x/mod/sumdb/note
	// documentation: our raw-key constructors must reproduce them.
	const (
		skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
		vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
		text = "If you think cryptography is the answer to your problem,\n" +
			"then you don't know what your problem is.\n"
		signed = text + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
	)
	raw, err := base64.StdEncoding.DecodeString(strings.SplitN(skey, "+", 5)[4])
	if err != nil || raw[0] != 1 {
		t.Fatal("bad test key")
	}
	priv := ed25519.NewKeyFromSeed(raw[1:])
	pub := priv.Public().(ed25519.PublicKey)

	if h := NoteKeyHash("PeterNeumann", pub); h != 0xc74f20a3 {
		t.Fatalf("NoteKeyHash = %08x, want c74f20a3", h)
	}
	if got, err := VerifierKey("PeterNeumann", pub); err != nil || got != vkey {
		t.Fatalf("VerifierKey = %q, %v; want %q", got, err, vkey)
	}
	signer, err := NewSigner("PeterNeumann", priv)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil || string(msg) != signed {
		t.Fatalf("signed note:\n%s\nwant\n%s (%v)", msg, signed, err)
	}
	verifier, err := NewVerifier("PeterNeumann", pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open([]byte(signed), note.VerifierList(verifier)); err != nil {
		t.Fatal(err)
	}
}

func TestKeyConstructorsReject(t *testing.T) {
	priv := testKey(1)
	pub := priv.Public().(ed25519.PublicKey)
	for _, name := range []string{"", "a b", "a+b", "a\tb", "a\x01b", "bad\xffutf8"} {
		if _, err := NewSigner(name, priv); err == nil {
			t.Errorf("NewSigner(%q) accepted", name)
		}
		if _, err := NewVerifier(name, pub); err == nil {
			t.Errorf("NewVerifier(%q) accepted", name)
		}
	}
	if _, err := NewSigner("x", priv[:32]); err == nil {
		t.Error("NewSigner accepted a 32-byte private key")
	}
	if _, err := NewVerifier("x", pub[:31]); err == nil {
		t.Error("NewVerifier accepted a 31-byte public key")
	}
	mismatched := append(ed25519.PrivateKey(nil), priv...)
	copy(mismatched[32:], testKey(2)[32:])
	if _, err := NewSigner("x", mismatched); err == nil {
		t.Error("NewSigner accepted a private key whose halves disagree")
	}
}

var goldenRoot = func() tlog.Hash {
	h, _ := tlog.ParseHash("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
	return h
}()

func goldenCheckpoint() Checkpoint {
	return Checkpoint{
		Origin: "agentmesh/did:key:z6Mkexample/0123abcd",
		Size:   20852163,
		Root:   goldenRoot,
		Time:   time.Date(2026, 3, 14, 15, 9, 26, 535897999, time.UTC),
	}
}

const goldenBody = "agentmesh/did:key:z6Mkexample/0123abcd\n" +
	"20852163\n" +
	"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n" +
	"time 2026-03-14T15:09:26.535897Z\n"

func TestCheckpointBody(t *testing.T) {
	if got := string(goldenCheckpoint().Body()); got != goldenBody {
		t.Fatalf("Body:\n%s\nwant\n%s", got, goldenBody)
	}
	c, err := ParseCheckpoint([]byte(goldenBody))
	if err != nil {
		t.Fatal(err)
	}
	want := goldenCheckpoint()
	want.Time = want.Time.Truncate(time.Microsecond)
	if c != want {
		t.Fatalf("ParseCheckpoint = %+v, want %+v", c, want)
	}
	// Without time, and the empty tree.
	empty := Checkpoint{Origin: "o", Size: 0, Root: EmptyRoot}
	body := string(empty.Body())
	if body != "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n" {
		t.Fatalf("Body = %q", body)
	}
	if c, err := ParseCheckpoint([]byte(body)); err != nil || c != empty {
		t.Fatalf("ParseCheckpoint = %+v, %v", c, err)
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	const root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	const ts = "time 2026-03-14T15:09:26.535897Z"
	cases := map[string]string{
		"empty":                       "",
		"no final newline":            "o\n5\n" + root,
		"two lines":                   "o\n5\n",
		"blank extension line":        "o\n5\n" + root + "\n\n",
		"five lines":                  "o\n5\n" + root + "\n" + ts + "\n" + ts + "\n",
		"unknown extension":           "o\n5\n" + root + "\nfoo bar\n",
		"empty origin":                "\n5\n" + root + "\n",
		"origin with space":           "a b\n5\n" + root + "\n",
		"origin with plus":            "a+b\n5\n" + root + "\n",
		"origin with tab":             "a\tb\n5\n" + root + "\n",
		"origin with control":         "a\x7fb\n5\n" + root + "\n",
		"origin invalid UTF-8":        "a\xffb\n5\n" + root + "\n",
		"CRLF":                        "o\r\n5\r\n" + root + "\r\n",
		"empty size":                  "o\n\n" + root + "\n",
		"size leading zero":           "o\n05\n" + root + "\n",
		"size zero zero":              "o\n00\n" + root + "\n",
		"size plus":                   "o\n+5\n" + root + "\n",
		"size negative":               "o\n-5\n" + root + "\n",
		"size space":                  "o\n 5\n" + root + "\n",
		"size trailing space":         "o\n5 \n" + root + "\n",
		"size exponent":               "o\n5e3\n" + root + "\n",
		"size hex":                    "o\n0x5\n" + root + "\n",
		"size overflow":               "o\n9223372036854775808\n" + root + "\n",
		"size beyond MaxTreeSize":     "o\n4611686018427387904\n" + root + "\n",
		"root short":                  "o\n5\n" + root[:40] + "\n",
		"root unpadded":               "o\n5\n" + root[:43] + "\n",
		"root long":                   "o\n5\n" + root + "AAAA\n",
		"root url alphabet":           "o\n5\n" + strings.ReplaceAll(root, "/", "_") + "\n",
		"root non-canonical bits":     "o\n5\n" + root[:42] + "J=\n",
		"root 31 bytes":               "o\n5\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n",
		"root 33 bytes":               "o\n5\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n",
		"root hex":                    "o\n5\n" + strings.Repeat("ab", 32) + "\n",
		"root with space":             "o\n5\n " + root + "\n",
		"time without fraction":       "o\n5\n" + root + "\ntime 2026-03-14T15:09:26Z\n",
		"time with offset":            "o\n5\n" + root + "\ntime 2026-03-14T15:09:26.535897+00:00\n",
		"time zero":                   "o\n5\n" + root + "\ntime 0001-01-01T00:00:00.000000Z\n",
		"time no space":               "o\n5\n" + root + "\ntime2026-03-14T15:09:26.535897Z\n",
		"time two spaces":             "o\n5\n" + root + "\ntime  2026-03-14T15:09:26.535897Z\n",
		"time upper case":             "o\n5\n" + root + "\nTIME 2026-03-14T15:09:26.535897Z\n",
		"signed note instead of body": goldenBody + "\n— o AAAAAAAA\n",
	}
	// In 44-character base64 of 32 bytes the last character before '='
	// carries two unused bits; canonical 'I' (8) has them clear, 'J' (9)
	// does not.
	if root[42] != 'I' {
		t.Fatal("test bug: root changed, fix the non-canonical case")
	}
	for name, body := range cases {
		c, err := ParseCheckpoint([]byte(body))
		if err == nil {
			t.Errorf("%s: accepted %q as %+v", name, body, c)
			continue
		}
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Kind != KindMalformed || !errors.Is(err, ErrMalformedCheckpoint) {
			t.Errorf("%s: error %v is not a KindMalformed ErrMalformedCheckpoint", name, err)
		}
	}
}

func TestSignOpenCheckpoint(t *testing.T) {
	signer := testSigner(t, 1)
	c := Checkpoint{Origin: testOrigin(1), Size: 7, Root: LeafHash([]byte("x")), Time: testEpoch}
	msg, err := SignCheckpoint(c, signer)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(msg, c.Body()) || !bytes.Contains(msg, []byte("\n\n— "+testOrigin(1)+" ")) {
		t.Fatalf("not a signed note of the body:\n%s", msg)
	}
	got, key, err := OpenCheckpoint(msg, note.VerifierList(testVerifier(t, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("OpenCheckpoint = %+v, want %+v", got, c)
	}
	wantKey := KeyID{testOrigin(1), NoteKeyHash(testOrigin(1), testKey(1).Public().(ed25519.PublicKey))}
	if key != wantKey || signer.KeyHash() != wantKey.Hash {
		t.Fatalf("key = %v, want %v", key, wantKey)
	}

	t.Run("unknown key", func(t *testing.T) {
		_, _, err := OpenCheckpoint(msg, note.VerifierList(testVerifier(t, 2)))
		ve := wantVerifyError(t, err, KindUnknownKey, NoSeq)
		if !strings.Contains(ve.Detail, key.String()) {
			t.Errorf("detail %q does not name the signing key %s", ve.Detail, key)
		}
		_, _, err = OpenCheckpoint(msg, nil)
		wantVerifyError(t, err, KindUnknownKey, NoSeq)
	})
	t.Run("same name, other key", func(t *testing.T) {
		// A verifier under the right name but for a different key has a
		// different key hash, so the signature is by an unknown key.
		v, err := NewVerifier(testOrigin(1), testKey(2).Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = OpenCheckpoint(msg, note.VerifierList(v))
		wantVerifyError(t, err, KindUnknownKey, NoSeq)
	})
	t.Run("flipped signature byte", func(t *testing.T) {
		for _, at := range []int{4, 20, 67} { // after the 4-byte key hash
			bad := flipSignatureByte(t, msg, at)
			_, _, err := OpenCheckpoint(bad, note.VerifierList(testVerifier(t, 1)))
			wantVerifyError(t, err, KindSignatureInvalid, NoSeq)
		}
	})
	t.Run("flipped key hash byte", func(t *testing.T) {
		bad := flipSignatureByte(t, msg, 0)
		_, _, err := OpenCheckpoint(bad, note.VerifierList(testVerifier(t, 1)))
		wantVerifyError(t, err, KindUnknownKey, NoSeq)
	})
	t.Run("edited body", func(t *testing.T) {
		for name, edit := range map[string][2]string{
			"size": {"\n7\n", "\n8\n"},
			"root": {"\n" + c.Root.String() + "\n", "\n" + LeafHash([]byte("y")).String() + "\n"},
			"time": {"time 2026", "time 2025"},
		} {
			bad := bytes.Replace(msg, []byte(edit[0]), []byte(edit[1]), 1)
			if bytes.Equal(bad, msg) {
				t.Fatalf("test bug: %s edit did nothing", name)
			}
			_, _, err := OpenCheckpoint(bad, note.VerifierList(testVerifier(t, 1)))
			wantVerifyError(t, err, KindSignatureInvalid, NoSeq)
		}
	})
	t.Run("malformed note", func(t *testing.T) {
		vs := note.VerifierList(testVerifier(t, 1))
		for name, bad := range map[string][]byte{
			"body only":            c.Body(),
			"empty":                nil,
			"no blank line":        bytes.Replace(msg, []byte("\n\n"), []byte("\n"), 1),
			"signature line no em": bytes.Replace(msg, []byte("— "), []byte("- "), 1),
			"bad base64":           bytes.Replace(msg, []byte(" "+testOrigin(1)+" "), []byte(" "+testOrigin(1)+" !!"), 1),
			"control character":    append([]byte("\x01"), msg...),
			"no final newline":     msg[:len(msg)-1],
		} {
			_, _, err := OpenCheckpoint(bad, vs)
			wantVerifyError(t, err, KindMalformed, NoSeq)
			if !errors.Is(err, ErrMalformedNote) {
				t.Errorf("%s: %v does not wrap ErrMalformedNote", name, err)
			}
		}
	})
	t.Run("validly signed malformed body", func(t *testing.T) {
		bad, err := note.Sign(&note.Note{Text: "o\n07\n" + c.Root.String() + "\n"}, signer)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = OpenCheckpoint(bad, note.VerifierList(testVerifier(t, 1)))
		wantVerifyError(t, err, KindMalformed, NoSeq)
		if !errors.Is(err, ErrMalformedCheckpoint) || errors.Is(err, ErrMalformedNote) {
			t.Errorf("%v: want ErrMalformedCheckpoint only", err)
		}
	})
	t.Run("cosigned by an unknown witness", func(t *testing.T) {
		witness, err := NewSigner("witness.example/w1", testKey(9))
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(msg, note.VerifierList(testVerifier(t, 1)))
		if err != nil {
			t.Fatal(err)
		}
		cosigned, err := note.Sign(n, witness)
		if err != nil {
			t.Fatal(err)
		}
		got, key, err := OpenCheckpoint(cosigned, note.VerifierList(testVerifier(t, 1)))
		if err != nil || got != c || key != wantKey {
			t.Fatalf("OpenCheckpoint(cosigned) = %+v, %v, %v", got, key, err)
		}
	})
}

// flipSignatureByte flips one bit of byte at of the first signature's
// decoded bytes (key hash first, then the Ed25519 signature).
func flipSignatureByte(t *testing.T, msg []byte, at int) []byte {
	t.Helper()
	i := bytes.LastIndexByte(msg[:len(msg)-1], ' ')
	sig, err := base64.StdEncoding.DecodeString(string(msg[i+1 : len(msg)-1]))
	if err != nil || at >= len(sig) {
		t.Fatalf("cannot flip byte %d: %v", at, err)
	}
	sig[at] ^= 0x01
	out := append([]byte(nil), msg[:i+1]...)
	out = append(out, base64.StdEncoding.EncodeToString(sig)...)
	return append(out, '\n')
}

func TestKeyHistory(t *testing.T) {
	// The log's key rotated from key 1 to key 2. Checkpoints signed by the
	// old key still verify as long as the old key is in the set.
	oldCP := Checkpoint{Origin: testOrigin(1), Size: 3, Root: LeafHash([]byte("a"))}
	newCP := Checkpoint{Origin: testOrigin(2), Size: 9, Root: LeafHash([]byte("b"))}
	oldMsg, err := SignCheckpoint(oldCP, testSigner(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	newMsg, err := SignCheckpoint(newCP, testSigner(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	history := note.VerifierList(testVerifier(t, 2), testVerifier(t, 1))
	for _, tc := range []struct {
		msg  []byte
		want Checkpoint
		seed byte
	}{{oldMsg, oldCP, 1}, {newMsg, newCP, 2}} {
		got, key, err := OpenCheckpoint(tc.msg, history)
		if err != nil || got != tc.want || key.Name != testOrigin(tc.seed) {
			t.Fatalf("OpenCheckpoint = %+v, %v, %v", got, key, err)
		}
	}
	_, _, err = OpenCheckpoint(oldMsg, note.VerifierList(testVerifier(t, 2)))
	wantVerifyError(t, err, KindUnknownKey, NoSeq)

	// Two keys under one name (rotation without renaming) are told apart
	// by key hash.
	v1, _ := NewVerifier("log", testKey(1).Public().(ed25519.PublicKey))
	v2, _ := NewVerifier("log", testKey(2).Public().(ed25519.PublicKey))
	s1, _ := NewSigner("log", testKey(1))
	if v1.KeyHash() == v2.KeyHash() {
		t.Fatal("different keys, same key hash")
	}
	m, err := SignCheckpoint(Checkpoint{Origin: "log", Size: 1, Root: LeafHash(nil)}, s1)
	if err != nil {
		t.Fatal(err)
	}
	if _, key, err := OpenCheckpoint(m, note.VerifierList(v2, v1)); err != nil || key.Hash != v1.KeyHash() {
		t.Fatalf("OpenCheckpoint = %v, %v", key, err)
	}
	// The key hash in the signature is NoteKeyHash.
	sig, _ := base64.StdEncoding.DecodeString(string(m[bytes.LastIndexByte(m[:len(m)-1], ' ')+1 : len(m)-1]))
	if binary.BigEndian.Uint32(sig) != NoteKeyHash("log", testKey(1).Public().(ed25519.PublicKey)) {
		t.Fatal("signature's key hash is not NoteKeyHash")
	}
}

func TestSignCheckpointValidates(t *testing.T) {
	s := testSigner(t, 1)
	for name, c := range map[string]Checkpoint{
		"empty origin":      {Size: 1},
		"origin with space": {Origin: "a b", Size: 1},
		"negative size":     {Origin: "o", Size: -1},
		"huge size":         {Origin: "o", Size: MaxTreeSize + 1},
		"time year 10000":   {Origin: "o", Size: 1, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := SignCheckpoint(c, s); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

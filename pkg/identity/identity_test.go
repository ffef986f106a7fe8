package identity

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// RFC 8032 §7.1, TEST 1.
const rfc8032Test1Secret = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
const rfc8032Test1Public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

func rfc8032Key(t testing.TB) ed25519.PrivateKey {
	seed, err := hex.DecodeString(rfc8032Test1Secret)
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func TestDIDKeyKnownAnswer(t *testing.T) {
	key := rfc8032Key(t)
	pub := key.Public().(ed25519.PublicKey)
	if hex.EncodeToString(pub) != rfc8032Test1Public {
		t.Fatalf("RFC 8032 test 1 public key mismatch: %x", pub)
	}
	const want = "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
	if got := DIDKey(pub); got != want {
		t.Fatalf("DIDKey = %s, want %s", got, want)
	}
	back, err := ParseDIDKey(want)
	if err != nil || !back.Equal(pub) {
		t.Fatalf("ParseDIDKey = %x, %v", back, err)
	}
}

func TestParseDIDKeyErrors(t *testing.T) {
	for _, in := range []string{
		"", "did:key:", "did:web:example.com", "did:key:zInvalid0OIl",
		"did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc", // X25519, not Ed25519
		"did:key:z" + strings.Repeat("2", 200),
	} {
		if _, err := ParseDIDKey(in); err == nil {
			t.Errorf("ParseDIDKey(%q) succeeded", in)
		}
	}
}

func TestBase58RoundTrip(t *testing.T) {
	for _, b := range [][]byte{{0}, {0, 0, 1}, {0xff, 0xee}, []byte("hello world")} {
		s := base58Encode(b)
		back, err := base58Decode(s)
		if err != nil || hex.EncodeToString(back) != hex.EncodeToString(b) {
			t.Errorf("base58 round trip of %x via %q = %x, %v", b, s, back, err)
		}
	}
	// Known answer from the base58 draft (draft-msporny-base58).
	if got := base58Encode([]byte("Hello World!")); got != "2NEpo7TZRRrLZSi2U" {
		t.Errorf("base58(Hello World!) = %s", got)
	}
}

func TestValidName(t *testing.T) {
	good := []string{"mcp-tool-server", "a", "A1", "srv_2.prod", strings.Repeat("x", MaxNameLen)}
	bad := []string{"", "-lead", ".hidden", "has space", "colon:x", "slash/x", "ünïcode", "pct%20", strings.Repeat("x", MaxNameLen+1)}
	for _, n := range good {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidName(n); err == nil {
			t.Errorf("ValidName(%q) accepted", n)
		}
	}
}

func TestValidSponsor(t *testing.T) {
	good := []string{"devops@company.com", "a.b+tag@sub.example.org"}
	bad := []string{"", "devops", "devops@", "@company.com", "Dev Ops <devops@company.com>", "devops@localhost", "a@b.", "a b@c.com"}
	for _, s := range good {
		if err := ValidSponsor(s); err != nil {
			t.Errorf("ValidSponsor(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if err := ValidSponsor(s); err == nil {
			t.Errorf("ValidSponsor(%q) accepted", s)
		}
	}
}

func newState(t *testing.T) *state.Dir {
	t.Helper()
	d, err := state.Create(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var t0 = time.Date(2026, 1, 31, 10, 15, 0, 0, time.UTC)

func TestCreateLoadRotate(t *testing.T) {
	d := newState(t)
	id, err := Create(d, CreateOptions{Name: "mcp-tool-server", Sponsor: "devops@company.com", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if id.DID() != "did:agentmesh:mcp-tool-server" {
		t.Errorf("DID = %s", id.DID())
	}
	if id.Doc.AlsoKnownAs[0] != DIDKey(id.Key.Public().(ed25519.PublicKey)) {
		t.Errorf("alsoKnownAs does not name the key")
	}
	for _, f := range []string{state.IdentityKey, state.AuthorityKey, state.IdentityDoc} {
		st, err := os.Stat(d.Join(f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, err %v; want 0600", f, st.Mode().Perm(), err)
		}
	}
	loaded, err := Load(d)
	if err != nil || !loaded.Key.Equal(id.Key) {
		t.Fatalf("Load = %v", err)
	}

	if _, err := Create(d, CreateOptions{Name: "other", Sponsor: "x@y.com", Now: t0}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second Create = %v, want ErrExists with --force hint", err)
	}

	msg := []byte("signed before rotation")
	oldSig := ed25519.Sign(id.Key, msg)
	rotated, rot, err := Rotate(d, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rot.Old.DIDKey == rot.New.DIDKey || rotated.Key.Equal(id.Key) {
		t.Fatal("rotation kept the same key")
	}
	if len(rotated.Doc.Keys) != 2 || rotated.Doc.Keys[0].Retired == "" {
		t.Fatalf("key history = %+v", rotated.Doc.Keys)
	}
	reloaded, err := Load(d)
	if err != nil || !reloaded.Key.Equal(rotated.Key) {
		t.Fatalf("Load after rotate = %v", err)
	}
	keys, _ := reloaded.Doc.PublicKeys()
	if !ed25519.Verify(keys[0], msg, oldSig) {
		t.Error("the old key's signature no longer verifies through the history")
	}
	// A forged hand-over is detected.
	reloaded.Doc.Keys[1].Handover = reloaded.Doc.Keys[1].Handover[:10] + "AAAA" + reloaded.Doc.Keys[1].Handover[14:]
	if err := reloaded.Doc.Verify(); err == nil || !strings.Contains(err.Error(), "hand-over") {
		t.Errorf("forged hand-over: Verify = %v", err)
	}
}

func TestCreateForceRetiresOldKeys(t *testing.T) {
	d := newState(t)
	if _, err := Create(d, CreateOptions{Name: "a", Sponsor: "a@b.com", Now: t0}); err != nil {
		t.Fatal(err)
	}
	id, err := Create(d, CreateOptions{Name: "b", Sponsor: "a@b.com", Force: true, Now: t0.Add(time.Second)})
	if err != nil || id.DID() != "did:agentmesh:b" {
		t.Fatalf("Create --force = %v", err)
	}
	retired, _ := os.ReadDir(d.Join(state.RetiredKeysDir))
	if len(retired) != 3 {
		t.Errorf("retired files = %d, want 3 (identity key, authority key, document)", len(retired))
	}
}

func TestLoadRefusesReadableKey(t *testing.T) {
	d := newState(t)
	if _, err := Create(d, CreateOptions{Name: "a", Sponsor: "a@b.com", Now: t0}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(d.Join(state.IdentityKey), 0o644)
	if _, err := Load(d); !errors.Is(err, state.ErrInsecureKey) {
		t.Fatalf("Load with 0644 key = %v, want ErrInsecureKey", err)
	}
}

func TestLoadFinishesInterruptedRotation(t *testing.T) {
	d := newState(t)
	if _, err := Create(d, CreateOptions{Name: "a", Sponsor: "a@b.com", Now: t0}); err != nil {
		t.Fatal(err)
	}
	rotated, _, err := Rotate(d, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// Simulate a crash between switching the document and the key file:
	// the new key is still at identity.pem.next, the old one in place.
	retired, _ := os.ReadDir(d.Join(state.RetiredKeysDir))
	oldPEM, _ := os.ReadFile(filepath.Join(d.Join(state.RetiredKeysDir), retired[0].Name()))
	newPEM, _ := os.ReadFile(d.Join(state.IdentityKey))
	os.WriteFile(d.Join(state.IdentityKey)+nextSuffix, newPEM, 0o600)
	os.WriteFile(d.Join(state.IdentityKey), oldPEM, 0o600)
	got, err := Load(d)
	if err != nil || !got.Key.Equal(rotated.Key) {
		t.Fatalf("Load after interrupted rotation = %v", err)
	}
}

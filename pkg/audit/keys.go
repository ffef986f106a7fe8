package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// algEd25519 is the signed-note signature algorithm identifier for Ed25519.
const algEd25519 = 0x01

// KeyID names a signed-note key: its key name and 32-bit key hash.
type KeyID struct {
	Name string
	Hash uint32
}

// String returns "name+hhhhhhhh", the prefix of the key's verifier key string.
func (k KeyID) String() string { return fmt.Sprintf("%s+%08x", k.Name, k.Hash) }

// NoteKeyHash returns the signed-note key hash of an Ed25519 public key under
// a key name: the first four bytes, big-endian, of
// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key) (C2SP signed-note, "Signatures").
func NoteKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', algEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// checkKeyName applies the signed-note rules for key names: non-empty, valid
// UTF-8, no Unicode spaces, no '+', and (so that the name can appear in a
// note) no control characters.
func checkKeyName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("key name is empty")
	case !utf8.ValidString(name):
		return fmt.Errorf("key name %q is not valid UTF-8", name)
	case strings.ContainsRune(name, '+'):
		return fmt.Errorf("key name %q contains '+'", name)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Errorf("key name %q contains a space", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("key name %q contains a control character", name)
	}
	return nil
}

// NewSigner returns a signed-note signer for an Ed25519 private key under
// the given key name (for checkpoints, the log's origin).
func NewSigner(name string, priv ed25519.PrivateKey) (note.Signer, error) {
	if err := checkKeyName(name); err != nil {
		return nil, fmt.Errorf("audit: signer: %w", err)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: signer %q: Ed25519 private key is %d bytes, want %d", name, len(priv), ed25519.PrivateKeySize)
	}
	seed := priv.Seed()
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if !pub.Equal(priv.Public()) {
		return nil, fmt.Errorf("audit: signer %q: private key's public half does not match its seed", name)
	}
	// note.NewSigner's input: "PRIVATE+KEY+<name>+<hash hex>+<base64(0x01 ‖ seed)>".
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, NoteKeyHash(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, seed...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("audit: signer %q: %w", name, err)
	}
	return s, nil
}

// VerifierKey returns the signed-note verifier key string
// "<name>+<hash hex>+<base64(0x01 ‖ public key)>" for an Ed25519 public key,
// the form in which operators can pin a log key in configuration.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if err := checkKeyName(name); err != nil {
		return "", fmt.Errorf("audit: verifier: %w", err)
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("audit: verifier %q: Ed25519 public key is %d bytes, want %d", name, len(pub), ed25519.PublicKeySize)
	}
	return fmt.Sprintf("%s+%08x+%s", name, NoteKeyHash(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, pub...))), nil
}

// NewVerifier returns a signed-note verifier for an Ed25519 public key under
// the given key name. Combine the verifiers of all keys a log has used
// (including rotated-out ones) with note.VerifierList.
func NewVerifier(name string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := VerifierKey(name, pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("audit: verifier %q: %w", name, err)
	}
	return v, nil
}

package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// algCosignatureV1 is the signed-note key type of Ed25519 cosignature/v1
// keys (C2SP tlog-cosignature, "Format").
const algCosignatureV1 = 0x04

// GenerateKey returns a new Ed25519 cosignature/v1 key pair as signed-note
// key strings: skey ("PRIVATE+KEY+<name>+<hash>+<base64(0x04 ‖ seed)>")
// and vkey ("<name>+<hash>+<base64(0x04 ‖ public key)>"), the form logs
// configure the witness by (audit.witnesses[].key).
func GenerateKey(name string) (skey, vkey string, err error) {
	if name == "" || strings.ContainsAny(name, "+ \t\n") {
		return "", "", fmt.Errorf("witness name %q: want a non-empty name without spaces or '+', such as witness.example.com/w1", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	key := append([]byte{algCosignatureV1}, pub...)
	h := keyHash(name, key)
	skey = fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, priv.Seed()...)))
	vkey = fmt.Sprintf("%s+%08x+%s", name, h, base64.StdEncoding.EncodeToString(key))
	return skey, vkey, nil
}

// keyHash is the signed-note key ID: SHA-256(name ‖ "\n" ‖ type ‖ key)[:4].
func keyHash(name string, typedKey []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(typedKey)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// Signer is a witness's cosigning key.
type Signer struct {
	note.Signer
	// VKey is its verifier key.
	VKey string
}

// LoadOrCreateKey reads the witness key at path (mode 0600, like every
// agentmesh key), creating one named name if there is none.
func LoadOrCreateKey(path, name string) (*Signer, error) {
	b, err := state.ReadSecret(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, _, gerr := GenerateKey(name)
		if gerr != nil {
			return nil, gerr
		}
		if err := state.CreateExclusive(path, []byte(skey+"\n")); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("witness key %s: %w", path, err)
		}
		b, err = state.ReadSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("witness key %s: %w", path, err)
	}
	return ParseSigner(strings.TrimSpace(string(b)))
}

// ParseSigner reads an skey written by GenerateKey.
func ParseSigner(skey string) (*Signer, error) {
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	parts := strings.SplitN(skey, "+", 5) // base64 may hold '+' too
	if len(parts) != 5 {
		return nil, errors.New("witness key: not a PRIVATE+KEY+NAME+HASH+KEY string")
	}
	seed, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(seed) != 1+ed25519.SeedSize || seed[0] != algCosignatureV1 {
		return nil, errors.New("witness key: not an Ed25519 cosignature/v1 key")
	}
	pub := ed25519.NewKeyFromSeed(seed[1:]).Public().(ed25519.PublicKey)
	key := append([]byte{algCosignatureV1}, pub...)
	return &Signer{Signer: s, VKey: fmt.Sprintf("%s+%08x+%s", s.Name(), keyHash(s.Name(), key), base64.StdEncoding.EncodeToString(key))}, nil
}

// NewVerifier returns the verifier of a witness's cosignatures from its
// verifier key (type 0x04; a plain Ed25519 vkey, type 0x01, is read as
// the same key used for cosignatures).
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness key %q: %w (want NAME+HASH+BASE64 as `agentmesh witness key` prints it)", vkey, err)
	}
	return v, nil
}

// timestampOf is when a cosignature/v1 was made (its signed timestamp).
func timestampOf(s note.Signature) (time.Time, error) {
	return fnote.CoSigV1Timestamp(s)
}

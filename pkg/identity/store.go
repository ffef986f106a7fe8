package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// Identity is a loaded identity: its public document and its private keys.
type Identity struct {
	Doc Document
	// Key is the current identity key: it signs audit checkpoints and key
	// hand-overs.
	Key ed25519.PrivateKey
	// Authority signs credentials (see credential.go for why it is a
	// separate key).
	Authority ed25519.PrivateKey
}

// DID returns did:agentmesh:NAME.
func (id *Identity) DID() string { return id.Doc.ID }

// ErrExists means an identity already exists in the state directory.
var ErrExists = errors.New("an identity already exists")

// ErrNoIdentity means the state directory holds no identity yet.
var ErrNoIdentity = errors.New("no identity")

// CreateOptions describe a new identity.
type CreateOptions struct {
	Name    string
	Sponsor string
	// Force replaces an existing identity. Its keys are moved to
	// keys/retired so nothing is lost by accident.
	Force bool
	Now   time.Time
}

// Create makes a new identity in the state directory: an Ed25519 identity
// key and authority key (PKCS#8 PEM, 0600, O_EXCL) and identity.json.
func Create(d *state.Dir, opts CreateOptions) (*Identity, error) {
	if err := ValidName(opts.Name); err != nil {
		return nil, err
	}
	if err := ValidSponsor(opts.Sponsor); err != nil {
		return nil, err
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	keyPath, authPath, docPath := d.Join(state.IdentityKey), d.Join(state.AuthorityKey), d.Join(state.IdentityDoc)
	if exists(keyPath) || exists(docPath) || exists(authPath) {
		if !opts.Force {
			return nil, fmt.Errorf("%w in %s (%s): pass --force to replace it; the old keys are kept in %s",
				ErrExists, d.Path, describeExisting(docPath), d.Join(state.RetiredKeysDir))
		}
		if err := retireAll(d, opts.Now); err != nil {
			return nil, err
		}
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	auth, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	// O_EXCL on the identity key decides a race between two processes:
	// the loser gets ErrExists and nothing of its own is written.
	if err := WritePrivateKey(keyPath, key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w in %s (created concurrently by another process)", ErrExists, d.Path)
		}
		return nil, fmt.Errorf("writing identity key: %w", err)
	}
	if err := WritePrivateKey(authPath, auth); err != nil {
		return nil, fmt.Errorf("writing authority key: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	now := timestamp(opts.Now)
	doc := Document{
		ID:          DID(opts.Name),
		AlsoKnownAs: []string{DIDKey(pub)},
		Name:        opts.Name,
		Sponsor:     opts.Sponsor,
		Created:     now,
		Authority:   DIDKey(auth.Public().(ed25519.PublicKey)),
		Keys:        []KeyRecord{{DIDKey: DIDKey(pub), Fingerprint: Fingerprint(pub), Created: now}},
	}
	if err := writeDoc(docPath, &doc); err != nil {
		return nil, err
	}
	return &Identity{Doc: doc, Key: key, Authority: auth}, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func describeExisting(docPath string) string {
	doc, err := readDoc(docPath)
	if err != nil {
		return "unreadable identity.json"
	}
	return doc.ID + ", sponsor " + doc.Sponsor
}

// retireAll moves the current keys and document aside (keys/retired/...)
// before --force replaces them.
func retireAll(d *state.Dir, now time.Time) error {
	stamp := now.UTC().Format("20060102T150405Z")
	for _, name := range []string{state.IdentityKey, state.AuthorityKey, state.IdentityDoc} {
		src := d.Join(name)
		if !exists(src) {
			continue
		}
		dst := filepath.Join(d.Join(state.RetiredKeysDir), stamp+"-"+filepath.Base(name))
		if err := os.Rename(src, dst); err != nil {
			return fmt.Errorf("moving %s aside: %w", src, err)
		}
	}
	return nil
}

// Load reads the identity from the state directory and verifies that the
// document and the private keys agree.
func Load(d *state.Dir) (*Identity, error) {
	doc, err := LoadDocument(d)
	if err != nil {
		return nil, err
	}
	if err := finishRotation(d, doc); err != nil {
		return nil, err
	}
	key, err := ReadPrivateKey(d.Join(state.IdentityKey))
	if err != nil {
		return nil, fmt.Errorf("loading identity key: %w", err)
	}
	auth, err := ReadPrivateKey(d.Join(state.AuthorityKey))
	if err != nil {
		return nil, fmt.Errorf("loading authority key: %w", err)
	}
	if DIDKey(key.Public().(ed25519.PublicKey)) != doc.Current().DIDKey {
		return nil, fmt.Errorf("identity key %s does not match the current key in %s (%s)",
			d.Join(state.IdentityKey), d.Join(state.IdentityDoc), doc.Current().Fingerprint)
	}
	if DIDKey(auth.Public().(ed25519.PublicKey)) != doc.Authority {
		return nil, fmt.Errorf("authority key %s does not match the authority in %s", d.Join(state.AuthorityKey), d.Join(state.IdentityDoc))
	}
	return &Identity{Doc: *doc, Key: key, Authority: auth}, nil
}

// LoadDocument reads and verifies identity.json without touching private
// keys (for verifiers and `status`).
func LoadDocument(d *state.Dir) (*Document, error) {
	p := d.Join(state.IdentityDoc)
	doc, err := readDoc(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: run `agentmesh identity create --name NAME --sponsor EMAIL` (or `agentmesh init`)", ErrNoIdentity, d.Path)
	}
	if err != nil {
		return nil, err
	}
	if err := doc.Verify(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return doc, nil
}

func readDoc(p string) (*Document, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	doc, err := decodeDoc(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid identity document: %w", p, err)
	}
	return doc, nil
}

func decodeDoc(data []byte) (*Document, error) {
	var doc Document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return &doc, nil
}

// ParseDocument decodes and verifies a copy of identity.json (its key
// history's hand-over signatures), for verifiers on another machine.
func ParseDocument(data []byte) (*Document, error) {
	doc, err := decodeDoc(data)
	if err != nil {
		return nil, fmt.Errorf("not a valid identity document: %w", err)
	}
	if err := doc.Verify(); err != nil {
		return nil, err
	}
	return doc, nil
}

func writeDoc(p string, doc *Document) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(p, append(data, '\n'))
}

// Rotation describes a completed key rotation.
type Rotation struct {
	Old, New KeyRecord
}

// Rotate replaces the identity key: the new key is introduced by a
// hand-over statement signed with the old key, the old private key moves to
// keys/retired, and the document keeps the old public key so signatures it
// made still verify.
func Rotate(d *state.Dir, now time.Time) (*Identity, Rotation, error) {
	id, err := Load(d)
	if err != nil {
		return nil, Rotation{}, err
	}
	newKey, err := GenerateKey()
	if err != nil {
		return nil, Rotation{}, err
	}
	newPub := newKey.Public().(ed25519.PublicKey)
	at := timestamp(now)
	old := id.Doc.Current()
	rec := KeyRecord{DIDKey: DIDKey(newPub), Fingerprint: Fingerprint(newPub), Created: at}
	sig := ed25519.Sign(id.Key, HandoverStatement(id.Doc.ID, old.DIDKey, rec.DIDKey, at))
	rec.Handover = base64.StdEncoding.EncodeToString(sig)

	doc := id.Doc
	doc.Keys = append(append([]KeyRecord{}, doc.Keys...), rec)
	doc.Keys[len(doc.Keys)-2].Retired = at
	doc.AlsoKnownAs = []string{rec.DIDKey}
	if err := doc.Verify(); err != nil {
		return nil, Rotation{}, fmt.Errorf("rotating: %w", err)
	}
	// Order matters for crash safety: keep the old private key, write the
	// new one beside it, then switch the document, then the key file.
	retired := filepath.Join(d.Join(state.RetiredKeysDir), now.UTC().Format("20060102T150405Z")+"-"+fileSafe(old.DIDKey)+".pem")
	oldPEM, err := MarshalPrivateKey(id.Key)
	if err != nil {
		return nil, Rotation{}, err
	}
	if err := state.CreateExclusive(retired, oldPEM); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, Rotation{}, fmt.Errorf("keeping the old key: %w", err)
	}
	newPEM, err := MarshalPrivateKey(newKey)
	if err != nil {
		return nil, Rotation{}, err
	}
	next := d.Join(state.IdentityKey) + nextSuffix
	if err := state.WriteFileAtomic(next, newPEM); err != nil {
		return nil, Rotation{}, fmt.Errorf("writing the new identity key: %w", err)
	}
	if err := writeDoc(d.Join(state.IdentityDoc), &doc); err != nil {
		return nil, Rotation{}, err
	}
	// From here on the document names the new key; Load finishes this
	// rename if the process dies before it.
	if err := os.Rename(next, d.Join(state.IdentityKey)); err != nil {
		return nil, Rotation{}, fmt.Errorf("installing the new identity key: %w", err)
	}
	return &Identity{Doc: doc, Key: newKey, Authority: id.Authority}, Rotation{Old: doc.Keys[len(doc.Keys)-2], New: rec}, nil
}

// nextSuffix names the new key written during a rotation before the
// document switches to it.
const nextSuffix = ".next"

// finishRotation completes a rotation interrupted after the document was
// switched to the new key but before the key file was replaced.
func finishRotation(d *state.Dir, doc *Document) error {
	next := d.Join(state.IdentityKey) + nextSuffix
	if !exists(next) {
		return nil
	}
	key, err := ReadPrivateKey(next)
	if err != nil {
		return fmt.Errorf("interrupted rotation: %w", err)
	}
	if DIDKey(key.Public().(ed25519.PublicKey)) != doc.Current().DIDKey {
		// The document was never switched: the rotation did not happen.
		return os.Remove(next)
	}
	return os.Rename(next, d.Join(state.IdentityKey))
}

// fileSafe shortens a did:key to a file-name-safe tag.
func fileSafe(didKey string) string {
	tag := strings.TrimPrefix(didKey, "did:key:")
	return tag[len(tag)-12:]
}

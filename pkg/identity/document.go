package identity

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// Document is the identity document stored as identity.json. It is public:
// it holds public keys only.
type Document struct {
	// ID is did:agentmesh:NAME.
	ID string `json:"id"`
	// AlsoKnownAs binds the DID to its current key: ["did:key:z6Mk..."].
	AlsoKnownAs []string `json:"alsoKnownAs"`
	Name        string   `json:"name"`
	Sponsor     string   `json:"sponsor"`
	Created     string   `json:"created"`
	// Authority is the did:key of the credential authority key.
	Authority string `json:"authority"`
	// Keys is the key history, oldest first; the last entry is current.
	// Old public keys stay so that checkpoints and hand-overs they signed
	// remain verifiable after rotation.
	Keys []KeyRecord `json:"keys"`
}

// KeyRecord is one identity key, current or retired.
type KeyRecord struct {
	DIDKey      string `json:"did_key"`
	Fingerprint string `json:"fingerprint"`
	Created     string `json:"created"`
	Retired     string `json:"retired,omitempty"`
	// Handover is the previous key's signature over HandoverStatement,
	// introducing this key; empty for the first key.
	Handover string `json:"handover,omitempty"`
}

// PublicKey decodes the record's key.
func (k KeyRecord) PublicKey() (ed25519.PublicKey, error) { return ParseDIDKey(k.DIDKey) }

// Current returns the current key record.
func (d *Document) Current() KeyRecord { return d.Keys[len(d.Keys)-1] }

// HandoverStatement is the text the outgoing key signs to introduce its
// successor. It names the identity, both keys and the time, one per line, so
// a signature cannot be replayed for another identity or key.
func HandoverStatement(did, oldKey, newKey, at string) []byte {
	return fmt.Appendf(nil, "agentmesh key hand-over v1\nidentity %s\nold %s\nnew %s\ntime %s\n", did, oldKey, newKey, at)
}

// Verify checks the document: DID matches the name, alsoKnownAs names the
// current key, and every hand-over was signed by the key before it.
func (d *Document) Verify() error {
	if err := ValidName(d.Name); err != nil {
		return fmt.Errorf("identity document: %w", err)
	}
	if d.ID != DID(d.Name) {
		return fmt.Errorf("identity document: id %q does not match name %q", d.ID, d.Name)
	}
	if len(d.Keys) == 0 {
		return errors.New("identity document has no keys")
	}
	if len(d.AlsoKnownAs) != 1 || d.AlsoKnownAs[0] != d.Current().DIDKey {
		return fmt.Errorf("identity document: alsoKnownAs %v does not name the current key %s", d.AlsoKnownAs, d.Current().DIDKey)
	}
	if _, err := ParseDIDKey(d.Authority); err != nil {
		return fmt.Errorf("identity document: authority: %w", err)
	}
	for i, k := range d.Keys {
		pub, err := k.PublicKey()
		if err != nil {
			return fmt.Errorf("identity document: key %d: %w", i+1, err)
		}
		if k.Fingerprint != Fingerprint(pub) {
			return fmt.Errorf("identity document: key %d: fingerprint does not match the key", i+1)
		}
		if i == 0 {
			if k.Handover != "" {
				return errors.New("identity document: the first key has a hand-over but no predecessor")
			}
			continue
		}
		prev := d.Keys[i-1]
		prevPub, _ := prev.PublicKey()
		sig, err := base64.StdEncoding.DecodeString(k.Handover)
		if err != nil || !ed25519.Verify(prevPub, HandoverStatement(d.ID, prev.DIDKey, k.DIDKey, k.Created), sig) {
			return fmt.Errorf("identity document: key %d (%s) has no valid hand-over signature from key %d", i+1, k.Fingerprint, i)
		}
		if prev.Retired == "" {
			return fmt.Errorf("identity document: key %d was replaced but has no retirement time", i)
		}
	}
	if d.Current().Retired != "" {
		return errors.New("identity document: the current key is marked retired")
	}
	return nil
}

// PublicKeys returns every key in the history, oldest first, for verifying
// signatures made before a rotation.
func (d *Document) PublicKeys() ([]ed25519.PublicKey, error) {
	keys := make([]ed25519.PublicKey, 0, len(d.Keys))
	for _, k := range d.Keys {
		pub, err := k.PublicKey()
		if err != nil {
			return nil, err
		}
		keys = append(keys, pub)
	}
	return keys, nil
}

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

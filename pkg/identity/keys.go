package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// GenerateKey returns a new Ed25519 key from crypto/rand.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating an Ed25519 key: %w", err)
	}
	return priv, nil
}

// Fingerprint is "SHA256:" and the unpadded base64 SHA-256 of the raw
// 32-byte public key, in the style of ssh-keygen -l.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// MarshalPrivateKey encodes a key as PKCS#8 PEM ("PRIVATE KEY").
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding the private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WritePrivateKey writes a new key file with mode 0600, failing if the file
// exists (O_EXCL).
func WritePrivateKey(path string, priv ed25519.PrivateKey) error {
	data, err := MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	return state.CreateExclusive(path, data)
}

// ReadPrivateKey reads a PKCS#8 PEM Ed25519 key, refusing files readable by
// group or others.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := state.ReadSecret(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("key file %s is not a PKCS#8 PEM private key", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s holds a %T, not an Ed25519 key", path, key)
	}
	return priv, nil
}

package identity

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// DIDMethod is the DID method of agentmesh identities: did:agentmesh:NAME.
const DIDMethod = "did:agentmesh:"

// DID returns did:agentmesh:NAME.
func DID(name string) string { return DIDMethod + name }

// ed25519PubMulticodec is the multicodec prefix of an Ed25519 public key
// (0xed, as an unsigned varint: 0xed 0x01).
var ed25519PubMulticodec = []byte{0xed, 0x01}

// DIDKey returns the did:key of an Ed25519 public key (W3C CCG did:key
// method): "did:key:z" + base58btc(0xed01 ‖ key). It binds did:agentmesh:NAME
// to its key through alsoKnownAs.
func DIDKey(pub ed25519.PublicKey) string {
	buf := append(append([]byte{}, ed25519PubMulticodec...), pub...)
	return "did:key:z" + base58Encode(buf)
}

// ParseDIDKey returns the Ed25519 public key named by a did:key.
func ParseDIDKey(did string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(did, "did:key:z")
	if !ok {
		return nil, fmt.Errorf("%q is not a base58btc did:key (want did:key:z...)", did)
	}
	raw, err := base58Decode(rest)
	if err != nil {
		return nil, fmt.Errorf("did:key %q: %w", did, err)
	}
	if len(raw) != 2+ed25519.PublicKeySize || raw[0] != 0xed || raw[1] != 0x01 {
		return nil, fmt.Errorf("did:key %q is not an Ed25519 public key", did)
	}
	return ed25519.PublicKey(raw[2:]), nil
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// base58Encode is the Bitcoin base58 encoding (base58btc): leading zero
// bytes become '1'.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	n := new(big.Int).SetBytes(b)
	radix := big.NewInt(58)
	mod := new(big.Int)
	var out []byte
	for n.Sign() > 0 {
		n.DivMod(n, radix, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for i := 0; i < zeros; i++ {
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func base58Decode(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty base58 string")
	}
	if len(s) > 128 {
		return nil, errors.New("base58 string too long")
	}
	n := new(big.Int)
	radix := big.NewInt(58)
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(base58Alphabet, s[i])
		if d < 0 {
			return nil, fmt.Errorf("invalid base58 character %q", s[i])
		}
		n.Mul(n, radix)
		n.Add(n, big.NewInt(int64(d)))
	}
	return append(make([]byte, zeros), n.Bytes()...), nil
}

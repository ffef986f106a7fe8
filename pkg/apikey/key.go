// Package apikey keeps the API keys of service callers (a CI job, a backend)
// that reach `agentmesh serve --http` without OAuth: each key names a caller
// (caller.ForAPIKey) and carries token scopes, like an access token would.
//
// # Key format
//
//	amk_<id>_<secret>
//
// "amk_" (agentmesh key) makes a key self-identifying, so secret scanners
// (and pkg/redact) find it by its shape; <id> is 8 characters of lower-case
// base32 (RFC 4648 alphabet, a-z and 2-7: 40 random bits), the key's public
// id, shown by `agentmesh keys list` and recorded in the audit log; <secret>
// is 52 characters of lower-case unpadded base32 encoding 32 random bytes
// (256 bits). Lower-case base32 has no '-' or '+', so a double click selects
// the whole key, and nothing in it needs escaping in a header or a URL.
//
// # Storage
//
// The state database keeps the SHA-256 of the whole key, never the key (the
// api_keys table, migration 9). A fast hash is right here, unlike for
// passwords: a password KDF (bcrypt, scrypt, Argon2) exists to slow down a
// dictionary search over low-entropy human choices, and a key is 256 bits
// from crypto/rand, so no search of its space is feasible whatever the
// hash costs (NIST SP 800-63B §5.1.1.2 asks for a KDF only for memorized
// secrets). A key is found by its id, then its hash is compared in
// constant time.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prefix starts every key.
const Prefix = "amk_"

// Lengths of a key's parts, in characters.
const (
	IDLen     = 8
	SecretLen = 52 // 32 bytes, unpadded base32
	KeyLen    = len(Prefix) + IDLen + 1 + SecretLen
)

// secretBytes is the key's entropy: 256 bits.
const secretBytes = 32

// alphabet is RFC 4648 base32 in lower case.
const alphabet = "abcdefghijklmnopqrstuvwxyz234567"

var encoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// ErrMalformed: the token is not an agentmesh API key at all.
var ErrMalformed = errors.New("not an agentmesh API key (want amk_<id>_<secret>)")

// Generate returns a new key and its id.
func Generate() (key, id string, err error) {
	var b [5 + secretBytes]byte // 5 bytes are exactly 8 base32 characters
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generating an API key: %w", err)
	}
	id = encoding.EncodeToString(b[:5])
	return Prefix + id + "_" + encoding.EncodeToString(b[5:]), id, nil
}

// Parse checks that key has the shape of an agentmesh API key and returns
// its public id. It does not decode the secret: the stored hash covers the
// key's characters, so a key is valid only as it was issued.
func Parse(key string) (id string, err error) {
	if len(key) != KeyLen || !strings.HasPrefix(key, Prefix) || key[len(Prefix)+IDLen] != '_' {
		return "", ErrMalformed
	}
	id = key[len(Prefix) : len(Prefix)+IDLen]
	if !isBase32(id) || !isBase32(key[len(Prefix)+IDLen+1:]) {
		return "", ErrMalformed
	}
	return id, nil
}

// ValidID reports whether s has the shape of a key's public id.
func ValidID(s string) bool { return len(s) == IDLen && isBase32(s) }

func isBase32(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// Hash is what the database stores for key: SHA-256 of its characters.
func Hash(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// MaxCallerName is the longest caller name, in bytes.
const MaxCallerName = 64

// ValidateCallerName checks a caller name: 1 to 64 ASCII letters, digits
// and ". _ - @" (a service name or an e-mail-like handle). The caller's ID
// is "key:NAME", shown in audit entries and used as the key of its trust
// state and rate-limit counters, so nothing that needs quoting is allowed.
func ValidateCallerName(name string) error {
	if name == "" {
		return errors.New("the caller name is empty")
	}
	if len(name) > MaxCallerName {
		return fmt.Errorf("the caller name is %d bytes long; at most %d", len(name), MaxCallerName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return fmt.Errorf("the caller name %q has %q: use letters, digits and . _ - @", name, rune(c))
		}
	}
	return nil
}

// ValidateScope checks one token scope: a scope-token of RFC 6749 §3.3
// (printable ASCII except space, '"' and '\'), as an OAuth token's scopes
// are, so that auth.scope_map treats both alike.
func ValidateScope(s string) error {
	if s == "" {
		return errors.New("empty scope")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("scope %q: a scope is printable ASCII without spaces, '\"' or '\\' (RFC 6749 §3.3)", s)
		}
	}
	return nil
}

// NormalScopes validates scopes and drops repeats, keeping their order; the
// result is never nil (stored as a JSON array).
func NormalScopes(scopes []string) ([]string, error) {
	out := make([]string, 0, len(scopes))
	seen := map[string]bool{}
	for _, s := range scopes {
		if err := ValidateScope(s); err != nil {
			return nil, err
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

// ParseExpires reads an expiry as `keys create --expires` takes it: a
// number of days ("90d"), a Go duration ("36h", "90m"), or an RFC 3339
// time ("2027-01-31T00:00:00Z"); "" means never. A relative expiry counts
// from now; the result must be after now.
func ParseExpires(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 100*365 {
			return time.Time{}, fmt.Errorf("expiry %q: want a whole number of days from 1 to 36500, e.g. 90d", s)
		}
		t = now.AddDate(0, 0, n)
	} else if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("expiry %q: the duration must be positive", s)
		}
		t = now.Add(d)
	} else if t, err = time.Parse(time.RFC3339, s); err != nil {
		return time.Time{}, fmt.Errorf("expiry %q: want days (90d), a duration (36h) or an RFC 3339 time (2027-01-31T00:00:00Z)", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("expiry %q is not in the future", s)
	}
	return t.UTC(), nil
}

package redact

import "strings"

// Rule IDs for values of sensitive keys.
const (
	rulePasswordPair = "password-pair"
	ruleSecretPair   = "secret-pair"
	ruleTokenPair    = "token-pair"
	ruleAPIKeyPair   = "api-key-pair"
	ruleAuthHeader   = "authorization-header"
)

// keySuffixes maps the normalised ending of a key name (lower case, letters
// and digits only) to the rule that redacts its value. Matching on the
// ending makes "DB_PASSWORD", "dbPassword" and "x-api-key" sensitive while
// "password_hint", "max_tokens" and "tokenizer" are not.
var keySuffixes = []struct{ suffix, rule string }{
	{"password", rulePasswordPair},
	{"passwd", rulePasswordPair},
	{"passphrase", rulePasswordPair},
	{"pwd", rulePasswordPair},
	{"secret", ruleSecretPair}, // also client_secret
	{"privatekey", ruleSecretPair},
	{"secretkey", ruleSecretPair},
	{"accountkey", ruleSecretPair}, // Azure storage connection strings
	{"storagekey", ruleSecretPair},
	{"masterkey", ruleSecretPair},
	{"sharedkey", ruleSecretPair},
	{"signingkey", ruleSecretPair},
	{"encryptionkey", ruleSecretPair},
	{"clientkey", ruleSecretPair},
	{"apikey", ruleAPIKeyPair},
	{"accesskey", ruleAPIKeyPair}, // also aws_secret_access_key, SharedAccessKey
	{"token", ruleTokenPair},
}

// exactKeyRule returns the rule for normalised key names that are sensitive
// only as a whole word (a key merely ending in "auth" or "sig" is not).
// For multi-word keys ("curl -H Authorization") the last word is compared.
func exactKeyRule(word []byte) (string, bool) {
	switch string(word) { // no allocation
	case "auth": // docker config.json "auth"
		return ruleTokenPair, true
	case "sig": // Azure SAS signature query parameter
		return ruleTokenPair, true
	case "authorization", "proxyauthorization":
		return ruleAuthHeader, true
	}
	return "", false
}

// keyLastBytes holds the last byte of every suffix and exact name above, for
// a quick reject of the many keys that cannot match.
const keyLastBytes = "deytnhg"

// keyNotSensitive lists endings that look sensitive but name opaque cursors
// an agent needs to page through results.
var keyNotSensitive = []string{"pagetoken", "nexttoken", "continuationtoken"}

// isCursorKey reports whether a member name names an opaque pagination
// cursor ("nextPageToken", "next_token", "continuationToken"). gitleaks'
// generic-api-key rule flags such high-entropy values after a "token" key;
// in JSON, where the key is known, that finding is dropped for these keys.
func isCursorKey(name []byte) bool {
	var buf [maxKeyTail]byte
	n := 0
	for i := len(name) - 1; i >= 0 && n < maxKeyTail; i-- {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			continue
		}
		n++
		buf[maxKeyTail-n] = c
	}
	for _, s := range keyNotSensitive {
		if hasSuffix(buf[maxKeyTail-n:], s) {
			return true
		}
	}
	return false
}

// maxKeyTail is how many trailing letters/digits of a key are examined; it is
// longer than every suffix above.
const maxKeyTail = 24

// sensitiveKeyRule reports whether a key name marks its value as a secret,
// and the rule that redacts the value.
func sensitiveKeyRule[K string | []byte](key K) (string, bool) {
	var buf [maxKeyTail]byte
	n := 0
	whole := true  // the last word fits in buf
	lastWord := -1 // n when the space before the last word was reached
	for i := len(key) - 1; i >= 0; i-- {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == ' ':
			if lastWord < 0 {
				lastWord = n
			}
			continue
		default:
			continue
		}
		if n == maxKeyTail {
			if lastWord < 0 {
				whole = false
			}
			break
		}
		n++
		buf[maxKeyTail-n] = c
	}
	norm := buf[maxKeyTail-n:]
	if n == 0 || strings.IndexByte(keyLastBytes, norm[n-1]) < 0 {
		return "", false
	}
	if lastWord < 0 {
		lastWord = n
	}
	if whole {
		if rule, ok := exactKeyRule(buf[maxKeyTail-lastWord:]); ok {
			return rule, true
		}
	}
	for _, s := range keyNotSensitive {
		if hasSuffix(norm, s) {
			return "", false
		}
	}
	for _, ks := range keySuffixes {
		if hasSuffix(norm, ks.suffix) {
			return ks.rule, true
		}
	}
	return "", false
}

// hasSuffix is strings.HasSuffix for a byte slice, without allocating.
func hasSuffix(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && string(b[len(b)-len(suffix):]) == suffix
}

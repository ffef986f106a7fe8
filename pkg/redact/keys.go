package redact

import "strings"

// Rule IDs for values of sensitive keys.
const (
	rulePasswordPair = "password-pair"
	ruleSecretPair   = "secret-pair"
	ruleTokenPair    = "token-pair"
	ruleAPIKeyPair   = "api-key-pair"
	ruleAuthHeader   = "authorization-header"
	// ruleSecretAssignment labels the value of a key whose name holds a
	// secret word followed by a qualifier ("aws_access_key_id",
	// "DB_PASSWORD_PROD", "client_secret_value", "apiKeyV2"), which the
	// suffix rules below do not cover. The value is redacted whatever its
	// format, but a finding of a more specific rule (a gitleaks format rule)
	// on the same span keeps that rule's label: see addUncovered.
	ruleSecretAssignment = "secret-assignment"
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

// keyRule returns the rule that a member name applies to its value in a
// structured document: a suffix rule's, or ruleSecretAssignment (scalars
// only), or "".
func keyRule[K string | []byte](name K) string {
	if rule, ok := sensitiveKeyRule(name); ok {
		return rule
	}
	if secretAssignmentKey(name) {
		return ruleSecretAssignment
	}
	return ""
}

// hasSuffix is strings.HasSuffix for a byte slice, without allocating.
func hasSuffix(b []byte, suffix string) bool {
	return len(b) >= len(suffix) && string(b[len(b)-len(suffix):]) == suffix
}

// maxAssignmentKey is the longest key name secretAssignmentKey examines;
// longer names are not identifiers a person would give a secret.
const maxAssignmentKey = 96

// maxKeyWords bounds the words of a key name secretAssignmentKey splits.
const maxKeyWords = 16

// secretAssignmentKey reports whether a key name that the suffix rules
// (sensitiveKeyRule) do not match still names a secret: an identifier
// (snake_case, kebab-case, camelCase, dotted, UPPER_CASE; no blanks, which
// mark prose) whose words contain a secret word — password, passwd,
// passphrase, pwd, secret, token, api key, access key, private key —
// followed by qualifiers such as "id" (only after "access key" and
// "secret"), a version, an environment or an encoding: "aws_access_key_id",
// "DB_PASSWORD_PROD", "secret_key_base", "github_token_v2", "apiKeyV2".
// Qualifiers that describe the secret instead of holding it ("hint",
// "policy", "name", "type", "length", "expires", "url", ...), before or
// after the secret word, rule the name out. The work is bounded by
// maxAssignmentKey bytes and allocates nothing.
func secretAssignmentKey[K string | []byte](key K) bool {
	if len(key) == 0 || len(key) > maxAssignmentKey || !mayNameSecret(key) {
		return false
	}
	var buf [maxAssignmentKey]byte
	var words [maxKeyWords]struct{ start, end int }
	n, b := 0, 0
	prev := 0 // class of the previous byte: 0 separator, 1 lower, 2 upper, 3 digit
	for i := 0; i < len(key); i++ {
		c := key[i]
		class := 0
		switch {
		case 'a' <= c && c <= 'z':
			class = 1
		case 'A' <= c && c <= 'Z':
			class = 2
			c += 'a' - 'A'
		case '0' <= c && c <= '9':
			class = 3
		case c == ' ' || c == '\t':
			return false // words separated by blanks are prose, not a name
		}
		if class == 0 {
			prev = 0
			continue
		}
		switch {
		case prev == 0, class == 3 && prev != 3, class != 3 && prev == 3, class == 2 && prev == 1:
			// A new word: after a separator, between letters and digits,
			// at a camelCase hump.
			if n == maxKeyWords {
				return false
			}
			words[n] = struct{ start, end int }{b, b}
			n++
		case class == 1 && prev == 2 && words[n-1].end-words[n-1].start >= 2:
			// "APIKey": the last capital of an acronym starts the next word.
			if n == maxKeyWords {
				return false
			}
			words[n-1].end--
			words[n] = struct{ start, end int }{b - 1, b - 1}
			n++
		}
		buf[b] = c
		b++
		words[n-1].end = b
		prev = class
	}
	word := func(i int) []byte { return buf[words[i].start:words[i].end] } // compared without allocating
	for p := 0; p < n; p++ {
		w := word(p)
		core, width, idOK, qualified := false, 1, false, false
		switch string(w) {
		case "password", "passwd", "passphrase", "pwd", "token":
			core = true
		case "secret":
			core, idOK = true, true
		case "api", "access", "private":
			if p+1 < n && string(word(p+1)) == "key" {
				core, width, idOK = true, 2, string(w) == "access"
			}
		default:
			if hasSuffix(w, "accesskeyid") { // "awsaccesskeyid"
				core, qualified = true, true
				break
			}
			for _, suffix := range assignmentCoreSuffixes {
				if hasSuffix(w, suffix) {
					core, idOK = true, suffix == "accesskey" || suffix == "secret"
					break
				}
			}
		}
		if !core {
			continue
		}
		if deniedBefore(buf[:], words[:p]) {
			return false
		}
		for q := p + width; q < n; q++ {
			t := word(q)
			if idOK && (string(t) == "id" || string(t) == "ids") {
				qualified = true
				continue
			}
			if assignmentDenied[string(t)] {
				return false
			}
			qualified = true
		}
		// Without a qualifier the name is the suffix rules' case (which
		// exempts, for example, pagination cursors).
		return qualified
	}
	return false
}

// mayNameSecret is a quick reject for secretAssignmentKey: it reports
// whether key holds, in any case, "passw", "passp", "pwd", "secret",
// "token", or "key" right after "api", "access" or "private" (one
// separator allowed between).
func mayNameSecret[K string | []byte](key K) bool {
	for i := 0; i+3 <= len(key); i++ {
		c, c1 := key[i]|0x20, key[i+1]|0x20
		switch {
		case c == 'p' && c1 == 'a', c == 'p' && c1 == 'w', c == 's' && c1 == 'e', c == 't' && c1 == 'o', c == 'k' && c1 == 'e':
		default:
			continue // the common case: two bytes that start no secret word
		}
		has := func(at int, w string) bool { // key[at:] starts with w, ignoring case
			if at < 0 || at+len(w) > len(key) {
				return false
			}
			for j := 0; j < len(w); j++ {
				if key[at+j]|0x20 != w[j] {
					return false
				}
			}
			return true
		}
		switch c {
		case 'p':
			if has(i, "passw") || has(i, "passp") || has(i, "pwd") {
				return true
			}
		case 's':
			if has(i, "secret") {
				return true
			}
		case 't':
			if has(i, "token") {
				return true
			}
		case 'k':
			if !has(i, "key") {
				continue
			}
			for _, before := range [...]string{"api", "access", "private"} {
				if has(i-len(before), before) || i > 0 && !isAlnum(key[i-1]) && has(i-1-len(before), before) {
					return true
				}
			}
		}
	}
	return false
}

// assignmentCoreSuffixes are secret words that may end a longer word of a
// key name written without separators ("DBPASSWORD_PROD", "STRIPE_APIKEY_LIVE").
var assignmentCoreSuffixes = []string{"password", "passwd", "passphrase", "secret", "apikey", "accesskey", "privatekey", "secretkey", "token"}

// deniedBefore reports whether a word before the secret word says the key
// describes the secret ("max_password_length", "is_password_set").
func deniedBefore(buf []byte, words []struct{ start, end int }) bool {
	for _, w := range words {
		switch string(buf[w.start:w.end]) {
		case "max", "min", "num", "total", "is", "has", "use", "enable", "enabled", "disable", "disabled",
			"require", "required", "allow", "allowed", "show", "hide", "count", "no", "invalid", "wrong":
			return true
		}
	}
	return false
}

// assignmentDenied lists qualifiers that describe a secret rather than hold
// it: "password_hint", "secret_name", "token_type", "api_key_header",
// "client_secret_expires_at". "id" is among them except after "access key"
// and "secret" (an AWS access key ID, a Vault secret_id).
var assignmentDenied = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		id ids hint hints policy policies rule rules regex pattern strength score prompt label field fields
		input form placeholder help description desc text title question message msg error errors
		length len min max minimum maximum size bytes chars characters digits count counts num number
		limit limits budget cost price rate usage used index idx prefix suffix last4 fingerprint
		file files filename path paths dir directory location mount source name names ref refs
		reference arn uri url urls link endpoint endpoints host hosts server env var vars variable
		type types kind format alg algs algorithm algorithms supported method methods mode scheme
		header headers param params parameter parameters config configuration settings options
		required require enabled enable disabled disable set is has visible visibility shown show hidden
		expires expiry expiration expired expire exp ttl lifetime age rotation rotated rotate interval
		duration seconds secs minutes hours days ms timeout window at date time timestamp in
		reset change changed updated update created sent request requests attempts retries lockout
		status state valid validation validator provider store manager engine backend vault generator
		scanning protection version versions`) {
		m[w] = true
	}
	return m
}()

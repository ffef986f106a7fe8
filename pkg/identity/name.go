package identity

import (
	"fmt"
	"net/mail"
	"strings"
)

// MaxNameLen bounds agent names so DIDs stay readable.
const MaxNameLen = 64

// ValidName checks an agent name for use as the method-specific id of
// did:agentmesh:NAME. W3C DID Core §3.1 allows ALPHA / DIGIT / "." / "-" /
// "_" and percent-encoding in idchar; agentmesh accepts the unencoded
// characters only, starting with a letter or digit, so a name is also a
// safe file, log and key name.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty: choose one such as mcp-tool-server")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name %q is longer than %d characters", name[:MaxNameLen]+"...", MaxNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			(i > 0 && (r == '.' || r == '-' || r == '_'))
		if !ok {
			return fmt.Errorf("name %q has %q at position %d: use letters, digits, '.', '-' and '_', starting with a letter or digit", name, r, i+1)
		}
	}
	return nil
}

// ValidSponsor checks that the sponsor is a bare, syntactically valid e-mail
// address (RFC 5322 addr-spec) with a domain that has a dot: the person
// accountable for the server, not a display name.
func ValidSponsor(s string) error {
	if s == "" {
		return fmt.Errorf("sponsor is empty: give the e-mail address of the person accountable for this server")
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return fmt.Errorf("sponsor %q is not an e-mail address such as devops@company.com", s)
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return fmt.Errorf("sponsor %q: the domain %q needs a dot, as in company.com", s, domain)
	}
	return nil
}

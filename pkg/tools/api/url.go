package api

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// maxURLLen bounds the URLs api_call accepts.
const maxURLLen = 4096

// target is a URL in the one canonical form api_call accepts: the form the
// allowlist, the capability scopes and the request all see.
type target struct {
	// canonical is "scheme://host[:port]/path[?query]": scheme and host
	// lower-case, default port dropped, path as written (escaped form),
	// fragment dropped. It is tools.Access.Target.
	canonical string
	// url is the request URL, built from the same parts.
	url *url.URL
}

// canonicalURL parses raw and refuses every spelling that could make the
// allowlist and the dialer disagree about the destination: user info,
// numeric hosts in anything but dotted-quad form (127.1, 0x7f000001,
// 2130706433, 017700000001), IPv4-mapped or non-canonical IPv6 literals,
// zone IDs, non-HTTP schemes, dot segments and encoded slashes in the path.
// Refusals are named for what they reveal: a host spelled to disguise where
// the request goes (user info, odd numeric forms, mapped or zoned IPv6, a
// trailing dot) is check "ssrf"; dot segments and encoded slashes in the
// path are "traversal"; anything else is "arguments" (not a URL in the
// accepted form).
func canonicalURL(raw string) (target, error) {
	if raw == "" {
		return target{}, tools.Refuse("arguments", "url is empty")
	}
	if len(raw) > maxURLLen {
		return target{}, tools.Refuse("arguments", "url is longer than %d bytes", maxURLLen)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c == '\\' {
			return target{}, tools.Refuse("ssrf", "the url contains a backslash at byte %d, which URL parsers disagree about (a disguised host)", i)
		} else if c <= ' ' || c == 0x7f {
			return target{}, tools.Refuse("arguments", "url contains a space or control character at byte %d", i)
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, tools.Refuse("arguments", "url does not parse: %v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return target{}, tools.Refuse("arguments", "url %q: only http and https URLs are accepted", raw)
	}
	if u.Opaque != "" || u.Host == "" {
		return target{}, tools.Refuse("arguments", "url %q has no host: write scheme://host/path", raw)
	}
	if u.User != nil {
		return target{}, tools.Refuse("ssrf", "the url carries user info (user@host), which disguises the real host; send credentials in a header")
	}
	host, err := canonicalHost(u)
	if err != nil {
		var d disguise
		if errors.As(err, &d) {
			return target{}, tools.Refuse("ssrf", "the url's host is disguised: %v", err)
		}
		return target{}, tools.Refuse("arguments", "url %q: %v", raw, err)
	}
	port, err := canonicalPort(scheme, u.Port(), strings.HasSuffix(u.Host, ":"))
	if err != nil {
		return target{}, tools.Refuse("arguments", "url %q: %v", raw, err)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if err := checkPath(path); err != nil {
		return target{}, tools.Refuse("traversal", "the url's path: %v", err)
	}
	hostport := host
	if port != "" {
		hostport += ":" + port
	}
	canonical := scheme + "://" + hostport + path
	if u.RawQuery != "" {
		canonical += "?" + u.RawQuery
	}
	req := &url.URL{Scheme: scheme, Host: hostport, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if req.Path == "" {
		req.Path = "/"
	}
	return target{canonical: canonical, url: req}, nil
}

// canonicalHost returns the host in canonical form ("[::1]" for IPv6), or
// an error for a spelling that is ambiguous between resolvers.
func canonicalHost(u *url.URL) (string, error) {
	name := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		ip, err := netip.ParseAddr(name)
		if err != nil || !ip.Is6() {
			return "", fmt.Errorf("host [%s] is not an IPv6 address", name)
		}
		if ip.Zone() != "" {
			return "", disguisef("IPv6 zone IDs are not accepted")
		}
		if ip.Is4In6() {
			return "", disguisef("IPv4-mapped IPv6 address [%s] stands for %s", name, ip.Unmap())
		}
		if ip.String() != strings.ToLower(name) {
			return "", disguisef("IPv6 address [%s] is not in canonical form ([%s])", name, ip)
		}
		return "[" + ip.String() + "]", nil
	}
	if ip, err := netip.ParseAddr(name); err == nil && ip.Is4() {
		return ip.String(), nil // dotted quad, no leading zeros (netip refuses them)
	}
	return checkDNSName(strings.ToLower(name))
}

// checkDNSName accepts letters, digits, '-' and '_' in labels of 1-63 bytes,
// and refuses names whose last label is numeric: URL parsers in browsers and
// libc resolvers read "127.1", "0x7f000001" or "2130706433" as IPv4
// addresses, and api_call must never disagree with them about that.
func checkDNSName(name string) (string, error) {
	if len(name) > 253 {
		return "", fmt.Errorf("host name longer than 253 bytes")
	}
	labels := strings.Split(name, ".")
	if len(labels) > 1 && labels[len(labels)-1] == "" {
		return "", disguisef("host %q ends in a dot, which names the same host as %q to a resolver but not to an allowlist", name, strings.TrimSuffix(name, "."))
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", fmt.Errorf("host %q has an empty or over-long label", name)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("host %q has a label starting or ending with '-'", name)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("host %q contains %q: write internationalised names in punycode (xn--)", name, c)
			}
		}
	}
	if numericLabel(labels[len(labels)-1]) {
		return "", disguisef("host %q is an IP address in a non-standard spelling (decimal, octal, hex or short form)", name)
	}
	return name, nil
}

// disguise is a host spelled so that resolvers and allowlists could
// disagree about where a request goes: an SSRF attempt, not a typo.
type disguise struct{ msg string }

func (d disguise) Error() string { return d.msg }

func disguisef(format string, args ...any) error { return disguise{fmt.Sprintf(format, args...)} }

// numericLabel reports whether a label is a number in decimal, octal or hex
// notation, as the WHATWG URL standard's IPv4 parser reads it.
func numericLabel(l string) bool {
	if strings.HasPrefix(l, "0x") {
		for _, c := range l[2:] {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// canonicalPort drops the scheme's default port and refuses spellings
// with leading zeros or out of range.
func canonicalPort(scheme, port string, emptyPort bool) (string, error) {
	if port == "" {
		if emptyPort {
			return "", fmt.Errorf("empty port after ':'")
		}
		return "", nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535 in canonical form", port)
	}
	if (scheme == "http" && n == 80) || (scheme == "https" && n == 443) {
		return "", nil
	}
	return port, nil
}

// checkPath refuses dot segments, also percent-encoded ones, and encoded
// slashes and backslashes: a server that decodes them would serve a path
// the allowlist never saw ("/v1/%2e%2e/admin").
func checkPath(escaped string) error {
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return fmt.Errorf("encoded slashes (%%2F, %%5C) are not accepted in the path")
	}
	for _, seg := range strings.Split(escaped, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return fmt.Errorf("path segment %q: %v", seg, err)
		}
		if dec == "." || dec == ".." {
			return fmt.Errorf("dot segments (. and ..) are not accepted in the path")
		}
	}
	return nil
}

package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// HTTP configures `serve --http`: the listener, its limits, TLS and who
// may connect (MCP 2025-11-25 and 2026-07-28, "Transports: Streamable
// HTTP" and "Security Best Practices").
type HTTP struct {
	Listen string `yaml:"listen"`
	// AllowNonLoopback is the old name of AllowUnauthenticated, still
	// honoured (serve warns that it is deprecated).
	AllowNonLoopback bool `yaml:"allow_non_loopback"`
	// AllowUnauthenticated permits a non-loopback listener without client
	// authentication: anyone who can reach it can call tools.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// MaxBody bounds a request body in bytes; a longer one gets 413 and
	// is not read further.
	MaxBody int64 `yaml:"max_body"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds each write of a response (a JSON body, one event
	// of a stream): a client that stops reading is dropped, while long
	// tool calls and quiet event streams are not cut.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// SessionIdleTTL ends sessions without a request (or an event on their
	// stream) for this long, with everything held for them.
	SessionIdleTTL Duration `yaml:"session_idle_ttl"`
	// MaxSessions bounds live sessions; an initialize beyond it gets 503.
	MaxSessions int `yaml:"max_sessions"`
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed
	// besides the listener's own address.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// TLSCert and TLSKey are PEM files, re-read when they change on disk.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ClientCA, when set, requires every client to present a certificate
	// it signed (mutual TLS); ClientCerts maps a certificate's SAN or
	// subject CN to a caller name.
	ClientCA    string            `yaml:"client_ca"`
	ClientCerts map[string]string `yaml:"client_certs"`
	// TrustedProxy says a TLS-terminating proxy is in front: true (any
	// peer), or the CIDRs it connects from (other peers are refused).
	TrustedProxy TrustedProxy `yaml:"trusted_proxy"`
	// MetricsAddr, when set, is a separate HOST:PORT listener serving
	// Prometheus metrics at /metrics and health at /healthz and /readyz
	// (docs/observability.md), for stdio and HTTP serve alike. It has no
	// authentication: keep it on loopback or a private network.
	MetricsAddr string `yaml:"metrics_addr"`
}

// AllowsUnauthenticated reports whether the configuration lets a
// non-loopback listener run without authentication (either spelling).
func (h HTTP) AllowsUnauthenticated() bool { return h.AllowUnauthenticated || h.AllowNonLoopback }

// TLS reports whether the listener serves TLS itself.
func (h HTTP) TLS() bool { return h.TLSCert != "" }

// DefaultHTTP is `serve --http` with no http: section.
func DefaultHTTP() HTTP {
	return HTTP{
		Listen:         "127.0.0.1:8080",
		MaxBody:        4 << 20,
		ReadTimeout:    Duration(30 * time.Second),
		WriteTimeout:   Duration(30 * time.Second),
		IdleTimeout:    Duration(60 * time.Second),
		SessionIdleTTL: Duration(30 * time.Minute),
		MaxSessions:    10000,
	}
}

// TrustedProxy is `trusted_proxy: true|false` or a list of CIDRs (a bare
// IP is a /32 or /128).
type TrustedProxy struct {
	// Any trusts every peer.
	Any bool
	// Nets are the peers' networks when given as a list.
	Nets []netip.Prefix
}

// Enabled reports whether a proxy is declared at all.
func (t TrustedProxy) Enabled() bool { return t.Any || len(t.Nets) > 0 }

// Allows reports whether a peer may connect: always without a list.
func (t TrustedProxy) Allows(ip netip.Addr) bool {
	if len(t.Nets) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, n := range t.Nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// UnmarshalYAML accepts a boolean or a list of CIDRs.
func (t *TrustedProxy) UnmarshalYAML(n *yaml.Node) error {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return err
		}
		*t = TrustedProxy{Any: b}
		return nil
	case n.Kind == yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return errors.New("expected true, false or a list of CIDRs such as [10.0.0.0/8]")
		}
		out := TrustedProxy{}
		for _, s := range list {
			p, err := parsePrefix(s)
			if err != nil {
				return err
			}
			out.Nets = append(out.Nets, p)
		}
		*t = out
		return nil
	}
	return fmt.Errorf("expected true, false or a list of CIDRs such as [10.0.0.0/8], got %q", n.Value)
}

// MarshalYAML writes the form UnmarshalYAML reads.
func (t TrustedProxy) MarshalYAML() (any, error) {
	if len(t.Nets) == 0 {
		return t.Any, nil
	}
	out := make([]string, len(t.Nets))
	for i, p := range t.Nets {
		out[i] = p.String()
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or an IP address", s)
}

// NormalizeOrigin returns an origin as browsers send it (RFC 6454 §6.1:
// lower-case scheme and host, the default port left out), or an error
// when s is not scheme://host[:port].
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("want an origin such as https://app.example.com or http://localhost:3000, got %q", s)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return u.Scheme + "://" + host, nil
}

// checkHTTP validates the http: section. Files are looked up relative to
// the configuration file's directory (paths with ${state_dir} are checked
// when serve starts).
func (v *validator) checkHTTP(h HTTP) {
	if _, _, err := net.SplitHostPort(h.Listen); err != nil {
		v.errorf("http.listen", "want HOST:PORT such as 127.0.0.1:8080: %v", err)
	}
	if err := CheckMetricsAddr(h.MetricsAddr); err != nil {
		v.errorf("http.metrics_addr", "%v", err)
	}
	if h.MaxBody < 1<<10 || h.MaxBody > 1<<30 {
		v.errorf("http.max_body", "must be between 1024 (1 KiB) and 1073741824 (1 GiB) bytes, got %d", h.MaxBody)
	}
	v.durationBetween("http.read_timeout", h.ReadTimeout, time.Second, time.Hour)
	v.durationBetween("http.write_timeout", h.WriteTimeout, time.Second, time.Hour)
	v.durationBetween("http.idle_timeout", h.IdleTimeout, time.Second, 24*time.Hour)
	v.durationBetween("http.session_idle_ttl", h.SessionIdleTTL, time.Second, 7*24*time.Hour)
	if h.MaxSessions < 1 || h.MaxSessions > 1_000_000 {
		v.errorf("http.max_sessions", "must be between 1 and 1000000, got %d", h.MaxSessions)
	}
	for i, o := range h.AllowedOrigins {
		if _, err := NormalizeOrigin(o); err != nil {
			v.errorf(fmt.Sprintf("http.allowed_origins[%d]", i), "%v", err)
		}
	}
	if (h.TLSCert == "") != (h.TLSKey == "") {
		v.errorf("http.tls_cert", "tls_cert and tls_key go together: set both (PEM files) or neither")
	}
	v.fileExists("http.tls_cert", h.TLSCert)
	v.fileExists("http.tls_key", h.TLSKey)
	v.fileExists("http.client_ca", h.ClientCA)
	if h.ClientCA != "" && h.TLSCert == "" {
		v.errorf("http.client_ca", "client certificates need TLS: set tls_cert and tls_key too")
	}
	if len(h.ClientCerts) > 0 && h.ClientCA == "" {
		v.errorf("http.client_certs", "client_certs maps certificates signed by client_ca: set client_ca")
	}
	names := make([]string, 0, len(h.ClientCerts))
	for n := range h.ClientCerts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.TrimSpace(n) == "" || strings.TrimSpace(h.ClientCerts[n]) == "" || strings.ContainsAny(h.ClientCerts[n], " \t\n") {
			v.errorf("http.client_certs."+n, "want CN-or-SAN: caller-name, both non-empty, the name without spaces; got %q: %q", n, h.ClientCerts[n])
		}
	}
}

func (v *validator) durationBetween(path string, d Duration, lo, hi time.Duration) {
	if d.D() < lo || d.D() > hi {
		v.errorf(path, "must be between %s and %s, got %s", lo, hi, d)
	}
}

func (v *validator) fileExists(path, p string) {
	if p == "" || strings.Contains(p, "${state_dir}") {
		return
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(v.file), p)
	}
	st, err := os.Stat(p)
	switch {
	case err != nil:
		v.errorf(path, "%v", err)
	case st.IsDir():
		v.errorf(path, "%s is a directory; want a PEM file", p)
	}
}

// CheckMetricsAddr checks a metrics listener address (http.metrics_addr,
// serve --metrics): empty (off) or HOST:PORT with a numeric port.
func CheckMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT such as 127.0.0.1:9464: %v", err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want HOST:PORT such as 127.0.0.1:9464: port %q is not a number from 0 to 65535", port)
	}
	return nil
}

package api

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// The hostile suite. Network rule: tests connect to loopback only. Every
// refused case runs against a counting loopback listener and must leave
// its connection count at zero; non-loopback addresses are only ever seen
// by the dialer's control hook, where the test hook refuses instead of
// connecting.

// TestSSRFLoopbackSpellings: loopback in every spelling, user-info tricks,
// DNS names resolving to loopback, unspecified addresses. None may
// connect, whatever the allowlist says.
func TestSSRFLoopbackSpellings(t *testing.T) {
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the counting server was reached: %s %s", r.Method, r.URL)
	}))
	p := srv.port()
	hook := newDialHook() // nothing may get past the guard
	tool := mustNew(t, Options{
		Endpoints: []Endpoint{
			{URL: "https://api.weather.com/*", Methods: []string{"GET"}},
			// An operator allowlisted loopback URLs but did not say
			// allow_private: the connect-time guard still refuses.
			{URL: "http://127.0.0.1:" + p + "/*"},
			{URL: "http://localhost:" + p + "/*"},
			{URL: "http://[::1]:" + p + "/*"},
			{URL: "http://rebind.test:" + p + "/*"},
			{URL: "http://mapped.test:" + p + "/*"},
			{URL: "http://nat64.test:" + p + "/*"},
			{URL: "http://multi.test:" + p + "/*"},
			// allow_private never opens the unspecified address, which
			// Linux routes to the local host.
			{URL: "http://0.0.0.0:" + p + "/*", AllowPrivate: true},
			{URL: "http://[::]:" + p + "/*", AllowPrivate: true},
			{URL: "http://zero.test:" + p + "/*", AllowPrivate: true},
		},
		Resolver: mapResolver(map[string][]string{
			"localhost":       {"127.0.0.1", "::1"},
			"rebind.test":     {"127.0.0.1"},
			"mapped.test":     {"::ffff:127.0.0.1"},
			"nat64.test":      {"64:ff9b::7f00:1"},
			"multi.test":      {"127.0.0.2", "::1", "127.0.0.1"},
			"zero.test":       {"0.0.0.0"},
			"api.weather.com": {"127.0.0.1"},
		}),
		DialControl: hook.control,
	})

	tests := []struct {
		name, url, method, check string
	}{
		{"dotted quad", "http://127.0.0.1:" + p + "/x", "", "ssrf"},
		{"short form 127.1", "http://127.1:" + p + "/", "", "ssrf"},
		{"hex", "http://0x7f000001:" + p + "/", "", "ssrf"},
		{"hex dotted", "http://0x7f.1:" + p + "/", "", "ssrf"},
		{"decimal", "http://2130706433:" + p + "/", "", "ssrf"},
		{"octal", "http://017700000001:" + p + "/", "", "ssrf"},
		{"octal dotted", "http://0177.0.0.1:" + p + "/", "", "ssrf"},
		{"leading zeros", "http://127.000.000.001:" + p + "/", "", "ssrf"},
		{"trailing dot", "http://127.0.0.1.:" + p + "/", "", "ssrf"},
		{"ipv6 loopback", "http://[::1]:" + p + "/", "", "ssrf"},
		{"ipv6 loopback long form", "http://[0:0:0:0:0:0:0:1]:" + p + "/", "", "ssrf"},
		{"ipv4-mapped", "http://[::ffff:127.0.0.1]:" + p + "/", "", "ssrf"},
		{"ipv4-mapped long", "http://[0:0:0:0:0:ffff:7f00:1]:" + p + "/", "", "ssrf"},
		{"ipv4-mapped hex", "http://[::ffff:7f00:1]:" + p + "/", "", "ssrf"},
		{"ipv4-compatible", "http://[::127.0.0.1]:" + p + "/", "", "ssrf"},
		{"localhost", "http://localhost:" + p + "/", "", "ssrf"},
		{"localhost upper case", "http://LOCALHOST:" + p + "/", "", "ssrf"},
		{"userinfo to loopback", "https://api.weather.com@127.0.0.1:" + p + "/", "", "ssrf"},
		{"userinfo with port", "http://api.weather.com:443@127.0.0.1:" + p + "/", "", "ssrf"},
		{"fragment trick", "http://127.0.0.1:" + p + "#@api.weather.com/", "", "ssrf"},
		{"backslash trick", "http://api.weather.com\\@127.0.0.1:" + p + "/", "", "ssrf"},
		{"percent-encoded host", "http://%31%32%37.0.0.1:" + p + "/", "", "arguments"},
		{"dns name to loopback", "http://rebind.test:" + p + "/", "", "ssrf"},
		{"dns to ipv4-mapped loopback", "http://mapped.test:" + p + "/", "", "ssrf"},
		{"dns to nat64 loopback", "http://nat64.test:" + p + "/", "", "ssrf"},
		{"dns to several loopbacks", "http://multi.test:" + p + "/", "", "ssrf"},
		{"allowlisted name to loopback", "https://api.weather.com/forecast", "", "ssrf"},
		{"unspecified", "http://0.0.0.0:" + p + "/", "", "ssrf"},
		{"unspecified ipv6", "http://[::]:" + p + "/", "", "ssrf"},
		{"dns to unspecified", "http://zero.test:" + p + "/", "", "ssrf"},
		{"other loopback not allowlisted", "http://127.0.0.2:" + p + "/", "", "ssrf"},
		{"encoded dot segments", "http://127.0.0.1:" + p + "/a/%2e%2e/b", "", "traversal"},
		{"encoded slash", "http://127.0.0.1:" + p + "/a%2fb", "", "traversal"},
		{"non-http scheme", "gopher://127.0.0.1:" + p + "/", "", "arguments"},
		{"file scheme", "file:///etc/passwd", "", "arguments"},
		{"method not allowed, loopback literal", "http://127.0.0.1:" + p + "/", "POST", "ssrf"},
		{"method not allowed", "http://rebind.test:" + p + "/", "POST", "method"},
		{"connect method", "http://127.0.0.1:" + p + "/", "CONNECT", "arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := []any{}
			if tt.method != "" {
				extra = append(extra, "method", tt.method)
			}
			res, err := call(t, tool, tt.url, extra...)
			if got := refusalCheck(err); got != tt.check {
				t.Fatalf("%s: check %q, want %q (result %v)", tt.url, got, tt.check, res)
			}
			if n := srv.conns.Load(); n != 0 {
				t.Fatalf("%s: %d connection(s) reached the loopback listener", tt.url, n)
			}
			if r := hook.take(); len(r) != 0 {
				t.Fatalf("%s: the guard let %v through to the test hook", tt.url, r)
			}
		})
	}
	if len(tests) < 15 {
		t.Fatalf("the hostile suite shrank to %d cases", len(tests))
	}
}

// TestSSRFNonLoopbackAtControlHook: metadata, private, CGNAT, multicast and
// public addresses. They are never dialled: an address literal is refused
// before any dial (preflight, naming it), a name at the control hook
// (reporting the address it resolved to), and whatever the guard accepts
// reaches the test hook, which refuses without connecting.
func TestSSRFNonLoopbackAtControlHook(t *testing.T) {
	hook := newDialHook()
	tool := mustNew(t, Options{
		Endpoints: []Endpoint{
			{URL: "http://169.254.169.254/*", AllowPrivate: true},
			{URL: "http://metadata.test/*"},
			{URL: "http://10.0.0.1/*"},
			{URL: "http://172.16.0.1/*"},
			{URL: "http://192.168.1.1/*"},
			{URL: "http://100.64.0.1/*", AllowPrivate: true},
			{URL: "http://224.0.0.1/*", AllowPrivate: true},
			{URL: "http://[fd00::1]/*"},
			{URL: "http://[fe80::1]/*", AllowPrivate: true},
			{URL: "http://[64:ff9b::a9fe:a9fe]/*"},
			{URL: "http://[2001:db8::1]/*"},
			{URL: "http://93.184.216.34/*"},
			{URL: "http://private.test/*", AllowPrivate: true},
			{URL: "http://mixed.test/*"},
		},
		Resolver: mapResolver(map[string][]string{
			"metadata.test": {"169.254.169.254"},
			"private.test":  {"10.0.0.1"},
			"mixed.test":    {"10.0.0.1", "93.184.216.34"},
		}),
		DialControl: hook.control,
	})
	tests := []struct {
		name, url string
		check     string
		// seen is the address the guard must name in its refusal, or,
		// for an address the guard accepts, the one the test hook must
		// be reached with.
		seen    string
		reached []string
	}{
		{"metadata, even with allow_private", "http://169.254.169.254/latest/meta-data", "ssrf", "169.254.169.254 is", nil},
		{"dns to metadata", "http://metadata.test/latest/meta-data", "ssrf", "169.254.169.254:80", nil},
		{"rfc1918 10/8", "http://10.0.0.1/", "ssrf", "10.0.0.1 is", nil},
		{"rfc1918 172.16/12", "http://172.16.0.1/", "ssrf", "172.16.0.1 is", nil},
		{"rfc1918 192.168/16", "http://192.168.1.1/", "ssrf", "192.168.1.1 is", nil},
		{"cgnat, even with allow_private", "http://100.64.0.1/", "ssrf", "100.64.0.1 is", nil},
		{"multicast, even with allow_private", "http://224.0.0.1/", "ssrf", "224.0.0.1 is", nil},
		{"unique local", "http://[fd00::1]/", "ssrf", "fd00::1 is", nil},
		{"ipv6 link-local, even with allow_private", "http://[fe80::1]/", "ssrf", "fe80::1 is", nil},
		{"nat64 of metadata", "http://[64:ff9b::a9fe:a9fe]/", "ssrf", "64:ff9b::a9fe:a9fe is", nil},
		{"documentation range", "http://[2001:db8::1]/", "ssrf", "2001:db8::1 is", nil},
		{"public: guard accepts, hook refuses", "http://93.184.216.34/", "error", "", []string{"93.184.216.34:80"}},
		{"private with allow_private: guard accepts", "http://private.test/", "error", "", []string{"10.0.0.1:80"}},
		{"private refused, public tried next", "http://mixed.test/", "ssrf", "10.0.0.1:80", []string{"93.184.216.34:80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(t, tool, tt.url)
			got := refusalCheck(err)
			if tt.check == "error" {
				if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, errNoDial.Error()) {
					t.Fatalf("%s: got %q, want the test hook's refusal as a tool error", tt.url, got)
				}
			} else if got != tt.check {
				t.Fatalf("%s: check %q, want %q", tt.url, got, tt.check)
			}
			if tt.seen != "" && !strings.Contains(err.Error(), tt.seen) {
				t.Fatalf("%s: refusal %q does not name the address %s checked at the control hook", tt.url, err, tt.seen)
			}
			if r := hook.take(); strings.Join(r, ",") != strings.Join(tt.reached, ",") {
				t.Fatalf("%s: test hook reached with %v, want %v", tt.url, r, tt.reached)
			}
		})
	}
}

// TestCheckAddr is the guard on its own.
func TestCheckAddr(t *testing.T) {
	tests := []struct {
		ip           string
		allowPrivate bool
		ok           bool
	}{
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"127.255.255.254", true, true},
		{"::1", false, false},
		{"::1", true, true},
		{"::ffff:127.0.0.1", false, false},
		{"::ffff:127.0.0.1", true, true},
		{"0.0.0.0", false, false},
		{"0.0.0.0", true, false},
		{"::", true, false},
		{"10.0.0.1", false, false},
		{"10.0.0.1", true, true},
		{"172.16.0.1", false, false},
		{"172.31.255.255", true, true},
		{"172.32.0.1", false, true},
		{"192.168.1.1", false, false},
		{"192.168.1.1", true, true},
		{"169.254.169.254", false, false},
		{"169.254.169.254", true, false},
		{"fe80::1", true, false},
		{"100.64.0.1", false, false},
		{"100.64.0.1", true, false},
		{"224.0.0.1", true, false},
		{"255.255.255.255", true, false},
		{"fd00::1", false, false},
		{"fd00::1", true, true},
		{"64:ff9b::7f00:1", false, false},
		{"64:ff9b::7f00:1", true, false},
		{"2002:7f00:1::", false, false},
		{"::ffff:93.184.216.34", false, false},
		{"198.18.0.1", false, false},
		{"93.184.216.34", false, true},
		{"2606:2800:220:1:248:1893:25c8:1946", false, true},
		{"8.8.8.8", true, true},
	}
	for _, tt := range tests {
		err := checkAddr(netip.MustParseAddr(tt.ip), tt.allowPrivate)
		if (err == nil) != tt.ok {
			t.Errorf("checkAddr(%s, allowPrivate=%v) = %v, want ok=%v", tt.ip, tt.allowPrivate, err, tt.ok)
		}
	}
	if err := checkAddr(netip.MustParseAddr("fe80::1%eth0"), true); err == nil {
		t.Error("an address with a zone was accepted")
	}
}

// TestSSRFRedirects: an allowed allow_private loopback endpoint redirects
// elsewhere. The allow_private decision belongs to the hop's endpoint, so
// it does not follow the redirect.
func TestSSRFRedirects(t *testing.T) {
	forbidden := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the forbidden server was reached: %s", r.URL)
	}))
	noPrivate := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the endpoint without allow_private was reached: %s", r.URL)
	}))
	var allowed *countingServer
	allowed = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to := map[string]string{
			"/to-forbidden":       "http://127.0.0.1:" + forbidden.port() + "/secret",
			"/to-no-private":      "http://127.0.0.1:" + noPrivate.port() + "/x",
			"/to-metadata":        "http://169.254.169.254/latest/meta-data",
			"/to-metadata-dns":    "http://metadata.test/latest/meta-data",
			"/to-public":          "http://public.test/",
			"/to-decimal":         "http://2130706433:" + forbidden.port() + "/",
			"/to-userinfo":        "http://a@127.0.0.1:" + forbidden.port() + "/",
			"/to-mapped":          "http://[::ffff:127.0.0.1]:" + forbidden.port() + "/",
			"/to-file":            "file:///etc/passwd",
			"/loop":               "/loop",
			"/post-to-get-only":   "http://localhost:" + allowed.port() + "/x",
			"/relative-forbidden": "//127.0.0.1:" + forbidden.port() + "/",
		}[r.URL.Path]
		code := http.StatusFound
		if r.URL.Path == "/post-to-get-only" {
			code = http.StatusTemporaryRedirect
		}
		http.Redirect(w, r, to, code)
	}))
	hook := newDialHook(allowed.addr())
	tool := mustNew(t, Options{
		Endpoints: []Endpoint{
			{URL: "http://127.0.0.1:" + allowed.port() + "/*", Methods: []string{"GET", "POST"}, AllowPrivate: true},
			{URL: "http://localhost:" + allowed.port() + "/*", Methods: []string{"GET"}, AllowPrivate: true},
			{URL: "http://127.0.0.1:" + noPrivate.port() + "/*"},
			{URL: "http://metadata.test/*"},
			{URL: "http://public.test/*"},
		},
		MaxRedirects: 3,
		Resolver: mapResolver(map[string][]string{
			"localhost":     {"127.0.0.1"},
			"metadata.test": {"169.254.169.254"},
			"public.test":   {"93.184.216.34"},
		}),
		DialControl: hook.control,
	})
	base := "http://127.0.0.1:" + allowed.port()
	tests := []struct {
		path, method, check string
		seen                string
		reached             []string
		hops                int64 // connections to the allowed server
	}{
		{"/to-forbidden", "", "redirect", "", nil, 1},
		{"/relative-forbidden", "", "redirect", "", nil, 1},
		{"/to-no-private", "", "ssrf", "127.0.0.1:" + noPrivate.port(), nil, 1},
		{"/to-metadata", "", "redirect", "", nil, 1},
		{"/to-metadata-dns", "", "ssrf", "169.254.169.254:80", nil, 1},
		{"/to-public", "", "error", "", []string{"93.184.216.34:80"}, 1},
		{"/to-decimal", "", "redirect", "", nil, 1},
		{"/to-userinfo", "", "redirect", "", nil, 1},
		{"/to-mapped", "", "redirect", "", nil, 1},
		{"/to-file", "", "redirect", "", nil, 1},
		{"/loop", "", "redirect", "", nil, 4},
		{"/post-to-get-only", "POST", "redirect", "", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := allowed.conns.Load()
			extra := []any{}
			if tt.method != "" {
				extra = append(extra, "method", tt.method, "body", "{}")
			}
			_, err := call(t, tool, base+tt.path, extra...)
			got := refusalCheck(err)
			if tt.check == "error" {
				if !strings.Contains(got, errNoDial.Error()) {
					t.Fatalf("got %q, want the test hook's refusal", got)
				}
			} else if got != tt.check {
				t.Fatalf("check %q, want %q (%v)", got, tt.check, err)
			}
			if tt.seen != "" && !strings.Contains(err.Error(), tt.seen) {
				t.Fatalf("refusal %q does not name %s", err, tt.seen)
			}
			if n := forbidden.conns.Load() + noPrivate.conns.Load(); n != 0 {
				t.Fatalf("%d connection(s) reached a forbidden loopback listener", n)
			}
			if r := hook.take(); strings.Join(r, ",") != strings.Join(tt.reached, ",") {
				t.Fatalf("test hook reached with %v, want %v", r, tt.reached)
			}
			if n := allowed.conns.Load() - before; n != tt.hops {
				t.Fatalf("allowed server saw %d connection(s), want %d", n, tt.hops)
			}
		})
	}
}

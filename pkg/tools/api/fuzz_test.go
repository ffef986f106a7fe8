package api

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzAPIURL: whatever the input, an allowed decision names an allowlisted
// host and port, as read by net/url from the raw input itself, and the
// canonical form is a fixed point.
func FuzzAPIURL(f *testing.F) {
	for _, s := range []string{
		"https://api.weather.com/v1/forecast",
		"https://API.WEATHER.COM:443/v1/x?q=1#f",
		"http://127.0.0.1:8080/v1/x",
		"http://127.1:8080/v1/x",
		"http://0x7f000001:8080/v1/",
		"http://2130706433:8080/v1/",
		"http://[::ffff:127.0.0.1]:8080/v1/",
		"https://api.weather.com@127.0.0.1:8080/v1/",
		"http://127.0.0.1:8080#@api.weather.com/v1/",
		"https://api.weather.com\\@evil.test/v1/x",
		"https://api.weather.com.evil.test/v1/x",
		"https://api.weather.com/v1/%2e%2e/admin",
		"https://api.weather.com/v1/../admin",
		"https://api.weather.com:0443/v1/x",
		"http://%61pi.weather.com/v1/x",
		"https://api.weather.com./v1/x",
	} {
		f.Add(s, "GET")
	}
	tool, err := New(Options{Endpoints: []Endpoint{
		{URL: "https://api.weather.com/v1/*", Methods: []string{"GET", "POST"}},
		{URL: "http://127.0.0.1:8080/v1/*", AllowPrivate: true},
	}})
	if err != nil {
		f.Fatal(err)
	}
	allowed := map[string]bool{"https|api.weather.com|": true, "http|127.0.0.1|8080": true}
	f.Fuzz(func(t *testing.T, raw, method string) {
		canonical, ok := tool.Allowed(raw, method)
		if !ok {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("allowed %q, which net/url cannot parse: %v", raw, err)
		}
		port := u.Port()
		if port == "443" && strings.EqualFold(u.Scheme, "https") {
			port = ""
		}
		key := strings.ToLower(u.Scheme) + "|" + strings.ToLower(u.Hostname()) + "|" + port
		if !allowed[key] || u.User != nil {
			t.Fatalf("allowed %q (canonical %q) whose host is %q", raw, canonical, key)
		}
		c, err := url.Parse(canonical)
		if err != nil || c.Hostname() != strings.ToLower(u.Hostname()) || c.Port() != port {
			t.Fatalf("canonical %q disagrees with raw %q about the host", canonical, raw)
		}
		if again, ok := tool.Allowed(canonical, method); !ok || again != canonical {
			t.Fatalf("canonical form %q is not a fixed point (%q, %v)", canonical, again, ok)
		}
		if !strings.HasPrefix(c.EscapedPath(), "/v1") {
			t.Fatalf("allowed %q outside /v1", canonical)
		}
	})
}

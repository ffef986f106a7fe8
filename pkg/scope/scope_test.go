package scope

import (
	"strings"
	"testing"
	"time"
)

func TestCovers(t *testing.T) {
	tests := []struct {
		resource string
		target   string
		want     bool
	}{
		{"filesystem:/data/*", "/data", true},
		{"filesystem:/data/*", "/data/users.json", true},
		{"filesystem:/data/*", "/data/a/b/c.txt", true},
		{"filesystem:/data/*", "/database", false},
		{"filesystem:/data/*", "/database/x", false},
		{"filesystem:/data/*", "/dat", false},
		{"filesystem:/data/*", "/", false},
		{"filesystem:/data/*", "/data/../etc/passwd", false},
		{"filesystem:/data/*", "/data/./x", false},
		{"filesystem:/data/*", "/data//x", false},
		{"filesystem:/data/*", "/data/", false},
		{"filesystem:/data/*", "data/x", false},
		{"filesystem:/data/users.json", "/data/users.json", true},
		{"filesystem:/data/users.json", "/data/users.json/x", false},
		{"filesystem:/data/users.json", "/data", false},
		{"filesystem:/logs/*.txt", "/logs/a.txt", true},
		{"filesystem:/logs/*.txt", "/logs/.txt", true},
		{"filesystem:/logs/*.txt", "/logs/a.txt.bak", false},
		{"filesystem:/logs/*.txt", "/logs/a/b.txt", false},
		{"filesystem:/*/public/*", "/data/public/x", true},
		{"filesystem:/*/public/*", "/data/private/x", false},
		{"filesystem:/*", "/anything/at/all", true},
		{"filesystem:/*", "/", true},
		{"database:users", "users", true},
		{"database:users", "users2", false},
		{"database:*", "anything", true},
		{"database:*", "a/b", false},
		{"api:https://api.weather.com/*", "https://api.weather.com/v1/forecast?q=x", true},
		{"api:https://api.weather.com/*", "https://API.weather.com/v1", true},
		{"api:https://api.weather.com/*", "http://api.weather.com/v1", false},
		{"api:https://api.weather.com/*", "https://api.weather.com.evil.com/v1", false},
		{"api:https://api.weather.com/*", "https://evil.com@api.weather.com/v1", false},
		{"api:https://api.weather.com/*", "https://api.weather.com:8443/v1", false},
		{"api:https://api.weather.com/v1/*", "https://api.weather.com/v2/x", false},
		{"api:https://api.weather.com/v1/*", "https://api.weather.com/v1/../v2", false},
		{"api:https://api.weather.com", "https://api.weather.com/", true},
		{"api:https://api.weather.com", "https://api.weather.com/x", false},
		{"code:starlark", "starlark", true},
		{"code:starlark", "python", false},
		{"mcp:github/*", "github/create_issue", true},
		{"mcp:github/*", "gitlab/create_issue", false},
		{"mcp:github/read_*", "github/read_file", true},
		{"mcp:github/read_*", "github/write_file", false},
		{"mcp:*", "github/write_file", true},
	}
	for _, tt := range tests {
		r, err := ParseResource(tt.resource)
		if err != nil {
			t.Fatalf("ParseResource(%q): %v", tt.resource, err)
		}
		if got := r.Covers(r.Kind, tt.target); got != tt.want {
			t.Errorf("%s covers %q = %v, want %v", tt.resource, tt.target, got, tt.want)
		}
	}
}

func TestCoversOtherKind(t *testing.T) {
	r, err := ParseResource("filesystem:/*")
	if err != nil {
		t.Fatal(err)
	}
	if r.Covers(Database, "/x") {
		t.Error("a filesystem pattern covered a database target")
	}
}

func TestParseResourceErrors(t *testing.T) {
	tests := []struct{ in, wantErr string }{
		{"/data/*", "has no kind"},
		{"disk:/data", "unknown kind"},
		{"filesystem:", "empty pattern"},
		{"filesystem:data/*", "must start with /"},
		{"filesystem:/", `"/" alone`},
		{"filesystem:/data/../etc", `".." components`},
		{"filesystem:/data//x", "empty path component"},
		{"filesystem:/data\\x", "backslashes"},
		{"api:ftp://x.com/*", "api patterns are URLs"},
		{"api:https://*.x.com/*", "wildcards are not allowed"},
		{"api:https://u:p@x.com/*", "api patterns are URLs"},
		{"mcp:github", "want 2 component"},
		{"database:a/b", "want 1 component"},
		{"filesystem:/" + strings.Repeat("a", 3000), "longer than"},
	}
	for _, tt := range tests {
		_, err := ParseResource(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseResource(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestScopeAllows(t *testing.T) {
	now := time.Date(2026, 1, 31, 10, 15, 0, 0, time.UTC)
	g := Grant{Resources: []string{"filesystem:/data/*"}, Actions: []string{"read", "list"}, Expires: now.Add(15 * time.Minute).Unix()}
	s, err := g.Parse()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		at     time.Time
		target string
		action Action
		want   bool
	}{
		{"read inside", now, "/data/users.json", Read, true},
		{"list inside", now, "/data", List, true},
		{"write not granted", now, "/data/users.json", Write, false},
		{"outside", now, "/etc/hosts", Read, false},
		{"one second before expiry", now.Add(15*time.Minute - time.Second), "/data/x", Read, true},
		{"at expiry", now.Add(15 * time.Minute), "/data/x", Read, false},
		{"after expiry", now.Add(time.Hour), "/data/x", Read, false},
	}
	for _, tt := range tests {
		if got := s.Allows(tt.at, Filesystem, tt.target, tt.action); got != tt.want {
			t.Errorf("%s: Allows = %v, want %v", tt.name, got, tt.want)
		}
	}
	if (Scope{Resources: s.Resources, Actions: s.Actions}).Allows(now, Filesystem, "/data/x", Read) {
		t.Error("a scope without expiry granted access")
	}
	back, err := s.Grant().Parse()
	if err != nil || len(back.Resources) != 1 || back.Resources[0].String() != "filesystem:/data/*" || !back.Expires.Equal(s.Expires) {
		t.Errorf("grant round trip: %+v, %v", back, err)
	}
}

func TestGrantParseErrors(t *testing.T) {
	for _, g := range []Grant{
		{Actions: []string{"read"}, Expires: 1},
		{Resources: []string{"filesystem:/x"}, Expires: 1},
		{Resources: []string{"filesystem:/x"}, Actions: []string{"delete"}, Expires: 1},
		{Resources: []string{"nope"}, Actions: []string{"read"}, Expires: 1},
	} {
		if _, err := g.Parse(); err == nil {
			t.Errorf("Grant %+v parsed, want an error", g)
		}
	}
}

func FuzzParseResource(f *testing.F) {
	for _, s := range []string{"filesystem:/data/*", "api:https://a.b/*", "mcp:x/y", "database:*", "code:starlark", "filesystem:/a/*b*/c"} {
		f.Add(s, "/data/x")
	}
	f.Fuzz(func(t *testing.T, pattern, target string) {
		r, err := ParseResource(pattern)
		if err != nil {
			return
		}
		back, err := ParseResource(r.String())
		if err != nil || back.String() != r.String() {
			t.Fatalf("round trip of %q: %v", pattern, err)
		}
		covered := r.Covers(r.Kind, target)
		// A target with dot-dot components is never covered.
		if covered && r.Kind == Filesystem && (strings.Contains(target+"/", "/../") || strings.Contains(target+"/", "/./")) {
			t.Fatalf("%q covers non-canonical %q", pattern, target)
		}
	})
}

func BenchmarkCovers(b *testing.B) {
	r, _ := ParseResource("filesystem:/data/*")
	set := Set{{Resources: []Resource{r}, Actions: []Action{Read}, Expires: time.Now().Add(time.Hour)}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if !set.Allows(now, Filesystem, "/data/reports/2026/q1/users.json", Read) {
			b.Fatal("not covered")
		}
	}
}

func BenchmarkCoversAPI(b *testing.B) {
	r, _ := ParseResource("api:https://api.weather.com/v1/*")
	b.ReportAllocs()
	for b.Loop() {
		if !r.Covers(API, "https://api.weather.com/v1/forecast?city=paris") {
			b.Fatal("not covered")
		}
	}
}

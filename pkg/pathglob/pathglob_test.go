package pathglob

import (
	"strings"
	"testing"
)

func TestComponent(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"abc", "abc", true}, {"abc", "abd", false}, {"*", "", true}, {"*", "anything", true},
		{"*.txt", "a.txt", true}, {"*.txt", ".txt", true}, {"*.txt", "a.txt.bak", false},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"read_*", "read_file", true},
		{"*a*a*a*a*b", strings.Repeat("a", 200), false}, {"[a]", "a", false}, {"?", "x", false},
	}
	for _, tt := range tests {
		if got := Component(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Component(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, target string
		want            bool
	}{
		{"**/.ssh/**", "home/u/.ssh/id_rsa", true},
		{"**/.ssh/**", ".ssh/config", true},
		{"**/.ssh/**", "home/u/ssh/x", false},
		{"**/.env", "a/b/.env", true},
		{"**/.env", ".env", true},
		{"**/.env", "a/.env.example", false},
		{"data/**", "data", true},
		{"data/**", "database", false},
		{"data/*/x", "data/a/x", true},
		{"data/*/x", "data/a/b/x", false},
		{"**", "", true},
		{"a/**/b/**/c", "a/x/b/y/z/c", true},
		{"a/**/b/**/c", "a/x/c", false},
	}
	for _, tt := range tests {
		if got := Match(strings.Split(tt.pattern, "/"), tt.target); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.target, got, tt.want)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	pat := strings.Split("**/.ssh/**", "/")
	b.ReportAllocs()
	for b.Loop() {
		Match(pat, "home/user/projects/app/config/settings.json")
	}
}

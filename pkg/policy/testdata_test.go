package policy

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

var update = flag.Bool("update", false, "rewrite the `# want:` lines of testdata/policies/bad_*.yaml")

// vectorsDir holds the repository's policy test vectors: good_*.yaml load
// without errors; bad_*.yaml start with one "# want: LINE:COL: message"
// line per expected error, in order.
const vectorsDir = "../../testdata/policies"

const wantPrefix = "# want: "

func TestPolicyVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorsDir, "*.yaml"))
	if err != nil || len(files) < 10 {
		t.Fatalf("found %d vectors in %s (%v)", len(files), vectorsDir, err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if *update && strings.HasPrefix(name, "bad_") {
				data = updateWants(t, path, data)
			}
			got := vectorErrors(name, data)
			want := wants(data)
			switch {
			case strings.HasPrefix(name, "good_"):
				if len(got) > 0 || len(want) > 0 {
					t.Fatalf("a good vector has errors:\n%s", strings.Join(got, "\n"))
				}
			case strings.HasPrefix(name, "bad_"):
				if len(want) == 0 {
					t.Fatal("a bad vector without # want: lines")
				}
				if !slices.Equal(got, want) {
					t.Fatalf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
			default:
				t.Fatal("vectors are named good_*.yaml or bad_*.yaml")
			}
		})
	}
}

// vectorErrors loads a vector as its own set and returns its errors as
// "LINE:COL: message".
func vectorErrors(name string, data []byte) []string {
	f, err := ParseFile(name, data)
	if err == nil {
		_, err = NewSet(f)
	}
	var out []string
	for _, e := range yamlpos.Errors(err) {
		if e.File != name {
			out = append(out, fmt.Sprintf("wrong file %q in %v", e.File, e))
			continue
		}
		out = append(out, fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg))
	}
	return out
}

func wants(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, wantPrefix) {
			break
		}
		out = append(out, strings.TrimPrefix(line, wantPrefix))
	}
	return out
}

// updateWants rewrites the header of a bad vector with its current errors
// (twice: the header's length shifts the line numbers).
func updateWants(t *testing.T, path string, data []byte) []byte {
	body := string(data)
	for strings.HasPrefix(body, wantPrefix) {
		_, body, _ = strings.Cut(body, "\n")
	}
	header := ""
	for range 2 {
		var b strings.Builder
		for _, e := range vectorErrors(filepath.Base(path), []byte(header+body)) {
			b.WriteString(wantPrefix + e + "\n")
		}
		header = b.String()
	}
	data = []byte(header + body)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

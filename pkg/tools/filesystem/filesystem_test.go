package filesystem

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"/data":                             "/data",
		"/data/":                            "/data",
		"/data//users.json":                 "/data/users.json",
		"/data/./users.json":                "/data/users.json",
		"/data/a/../users.json":             "/data/users.json",
		"/data/..foo":                       "/data/..foo",
		"/data/foo..":                       "/data/foo..",
		"/data/...":                         "/data/...",
		"/data/a%2f..%2fb":                  "/data/a%2f..%2fb",
		"/data/données/résumé":              "/data/données/résumé",
		"/":                                 "/",
		"/data/" + strings.Repeat("x", 255): "/data/" + strings.Repeat("x", 255),
	} {
		got, err := Clean(in)
		if err != nil || got != want {
			t.Errorf("Clean(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, check := range map[string]string{"": "path", "data": "path", "/..": "traversal", "/data/../..": "traversal", "/a\\b": "path", "/a\\..\\b": "traversal",
		"/a\x00": "traversal", "/a\x7f": "path", "/a\u0085": "path", "/\xff": "path", "../x": "traversal", "/data/%2E%2e/x": "traversal",
		"/" + strings.Repeat("x", 256): "path", "/" + strings.Repeat("a/", 2049): "path"} {
		if got, err := Clean(in); err == nil {
			t.Errorf("Clean(%q) = %q, want a refusal", in, got)
		} else if r, ok := err.(*tools.Refusal); !ok || r.Check != check {
			t.Errorf("Clean(%q): %v, want a %s refusal", in, err, check)
		}
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"**/.ssh/**", "/data/.ssh", true},
		{"**/.ssh/**", "/data/.ssh/id_rsa", true},
		{"**/.ssh/**", "/data/a/b/.ssh/keys/x", true},
		{"**/.ssh/**", "/data/.sshx/id", false},
		{"**/.ssh/**", "/data/x.ssh", false},
		{"**/.env", "/data/.env", true},
		{"**/.env", "/data/sub/deep/.env", true},
		{"**/.env", "/data/.env.example", false},
		{"**/.env", "/data/.ENV", true},
		{"**/*.pem", "/data/certs/a.pem", true},
		{"**/*.pem", "/data/certs/a.pem/x", false},
		{"**/id_rsa*", "/data/id_rsa.pub", true},
		{"/data/private/**", "/data/private", true},
		{"/data/private/**", "/database/private", false},
		{"data/*.txt", "/data/a.txt", true},
		{"data/*.txt", "/data/a/b.txt", false},
		{"**/a/**/b", "/x/a/y/z/b", true},
		{"**/a/**/b", "/x/a/y/z/c", false},
		{"**", "/anything/at/all", true},
	}
	for _, c := range cases {
		g, err := parseGlob(c.pattern)
		if err != nil {
			t.Fatalf("parseGlob(%q): %v", c.pattern, err)
		}
		if got := g.match(c.path); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
	for _, bad := range []string{"", "/", "a//b", "[", "a\\b"} {
		if _, err := parseGlob(bad); err == nil {
			t.Errorf("parseGlob(%q) accepted a bad pattern", bad)
		}
	}
}

func TestNewRejectsBadMounts(t *testing.T) {
	dir := t.TempDir()
	for name, roots := range map[string][]Root{
		"relative mount": {{HostPath: dir, Mount: "data"}},
		"root mount":     {{HostPath: dir, Mount: "/"}},
		"unclean mount":  {{HostPath: dir, Mount: "/data/"}},
		"dotdot mount":   {{HostPath: dir, Mount: "/data/../x"}},
		"nested mounts":  {{HostPath: dir, Mount: "/data"}, {HostPath: dir, Mount: "/data/sub"}},
		"same mount":     {{HostPath: dir, Mount: "/data"}, {HostPath: dir, Mount: "/data"}},
		"missing host":   {{HostPath: filepath.Join(dir, "missing"), Mount: "/data"}},
		"bad access":     {{HostPath: dir, Mount: "/data", Access: "write"}},
		"host is a file": {{HostPath: writeTemp(t, dir), Mount: "/data"}},
	} {
		if f, err := New(Options{Roots: roots}); err == nil {
			f.Close()
			t.Errorf("%s: New accepted %v", name, roots)
		}
	}
	if _, err := New(Options{BlockedGlobs: []string{"["}}); err == nil {
		t.Error("New accepted a malformed glob")
	}
	// Look-alike prefixes are distinct mounts.
	f, err := New(Options{Roots: []Root{{HostPath: dir, Mount: "/data"}, {HostPath: dir, Mount: "/database"}}})
	if err != nil {
		t.Fatalf("/data and /database must coexist: %v", err)
	}
	f.Close()
}

func writeTemp(t *testing.T, dir string) string {
	p := filepath.Join(dir, "file")
	writeFile(t, p, "x")
	return p
}

func TestBenign(t *testing.T) {
	fx := newFixture(t)
	files := map[string]string{
		"nested/a/b/c.txt":       "deep",
		"..foo":                  "dotdot prefix",
		"foo..":                  "dotdot suffix",
		"données/résumé.txt":     "unicode",
		"日本語.txt":                "japanese",
		"a%2fb":                  "literal percent",
		"with space.txt":         "space",
		"reports/q1.csv":         "quarter,revenue\nq1,100\n",
		".environment":           "not .env",
		"env/.env.example":       "not .env either",
		strings.Repeat("n", 255): "long name",
		"emoji-\U0001F600.txt":   "emoji",
		"U+FFFD-\uFFFD.txt":      "replacement char \uFFFD inside",
		"multibyte-cut.txt":      "héllo",
	}
	for p, c := range files {
		writeFile(t, filepath.Join(fx.data, filepath.FromSlash(p)), c)
	}
	symlink(t, "users.json", filepath.Join(fx.data, "alias.json"))
	symlink(t, "nested/a", filepath.Join(fx.data, "shortcut"))

	t.Run("read", func(t *testing.T) {
		cases := map[string]string{"/data/users.json": `[{"id":1,"name":"Ada"}]`, "/data/alias.json": `[{"id":1,"name":"Ada"}]`,
			"/data/shortcut/b/c.txt": "deep", "/data/nested/a/../a/b/c.txt": "deep", "/ro/readme.txt": "read-only mount",
			"/database/db.txt": "database mount"}
		for p, c := range files {
			cases["/data/"+p] = c
		}
		for p, want := range cases {
			o := run(fx.read, map[string]any{"path": p})
			if o.err != nil || o.accessErr != nil {
				t.Errorf("read %q: %v / %v", p, o.accessErr, o.err)
				continue
			}
			if got := o.resultText(); got != want {
				t.Errorf("read %q = %q, want %q", p, got, want)
			}
		}
	})
	t.Run("read max_bytes", func(t *testing.T) {
		o := run(fx.read, map[string]any{"path": "/data/multibyte-cut.txt", "max_bytes": float64(2)})
		if o.err != nil {
			t.Fatal(o.err)
		}
		if len(o.res.Content) != 2 || o.resultText() != "h[truncated: 1 of 6 bytes of /data/multibyte-cut.txt shown]" {
			t.Fatalf("truncated read: %q", o.resultText())
		}
		for _, bad := range []any{float64(0), float64(-1), float64(1.5), "10", float64(1 << 40)} {
			o := run(fx.read, map[string]any{"path": "/data/users.json", "max_bytes": bad})
			if r := o.refusal(); r == nil || r.Check != "arguments" {
				t.Errorf("max_bytes %v: want an arguments refusal, got %v", bad, o.err)
			}
		}
	})
	t.Run("list", func(t *testing.T) {
		writeFile(t, filepath.Join(fx.data, ".env"), "SECRET=1")
		o := run(fx.list, map[string]any{"path": "/data"})
		if o.err != nil {
			t.Fatal(o.err)
		}
		l := o.res.StructuredContent.(*Listing)
		byName := map[string]Entry{}
		for _, e := range l.Entries {
			byName[e.Name] = e
		}
		if e := byName["users.json"]; e.Type != "file" || e.Size != int64(len(`[{"id":1,"name":"Ada"}]`)) || e.Blocked {
			t.Errorf("users.json entry: %+v", e)
		}
		if e := byName["nested"]; e.Type != "directory" {
			t.Errorf("nested entry: %+v", e)
		}
		if e := byName["alias.json"]; e.Type != "symlink" {
			t.Errorf("alias.json entry: %+v", e)
		}
		if e := byName[".env"]; !e.Blocked {
			t.Errorf(".env must be listed as blocked: %+v", e)
		}
		if _, ok := byName["日本語.txt"]; !ok {
			t.Errorf("unicode name missing from %v", l.Entries)
		}
		if l.Path != "/data" || l.Truncated {
			t.Errorf("listing header: %+v", l)
		}
		var fromText Listing
		if err := json.Unmarshal([]byte(o.resultText()), &fromText); err != nil || len(fromText.Entries) != len(l.Entries) {
			t.Errorf("text fallback is not the same JSON: %v", err)
		}
		if o := run(fx.list, map[string]any{"path": "/data/shortcut/b"}); o.err != nil || len(o.res.StructuredContent.(*Listing).Entries) != 1 {
			t.Errorf("list through an inner symlink: %v", o.err)
		}
		if o := run(fx.list, map[string]any{"path": "/data/users.json"}); o.err == nil || o.refusal() != nil {
			t.Errorf("listing a file must be a plain error, got %v", o.err)
		}
	})
	t.Run("write", func(t *testing.T) {
		o := run(fx.write, map[string]any{"path": "/data/out/new.txt", "content": "hello"})
		if o.err == nil {
			t.Fatal("a missing parent without create_dirs must fail")
		}
		o = run(fx.write, map[string]any{"path": "/data/out/new.txt", "content": "hello", "create_dirs": true})
		if o.err != nil {
			t.Fatal(o.err)
		}
		if w := o.res.StructuredContent.(*Written); !w.Created || w.Bytes != 5 || w.Path != "/data/out/new.txt" {
			t.Errorf("write result %+v", w)
		}
		if got := run(fx.read, map[string]any{"path": "/data/out/new.txt"}).resultText(); got != "hello" {
			t.Errorf("read back %q", got)
		}
		if err := os.Chmod(filepath.Join(fx.data, "out", "new.txt"), 0o600); err != nil {
			t.Fatal(err)
		}
		o = run(fx.write, map[string]any{"path": "/data/out/new.txt", "content": "replaced"})
		if o.err != nil || o.res.StructuredContent.(*Written).Created {
			t.Fatalf("overwrite: %v", o.err)
		}
		fi, err := os.Stat(filepath.Join(fx.data, "out", "new.txt"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("overwrite must keep the permissions: %v %v", fi.Mode(), err)
		}
		ents, _ := os.ReadDir(filepath.Join(fx.data, "out"))
		if len(ents) != 1 {
			t.Errorf("temporary files left behind: %v", ents)
		}
		o = run(fx.write, map[string]any{"path": "/data/shortcut/new.txt", "content": "via inner link"})
		if o.err != nil {
			t.Fatalf("write through an inner directory link: %v", o.err)
		}
		if b, _ := os.ReadFile(filepath.Join(fx.data, "nested", "a", "new.txt")); string(b) != "via inner link" {
			t.Errorf("inner link write landed elsewhere: %q", b)
		}
		o = run(fx.write, map[string]any{"path": "/data/big.txt", "content": strings.Repeat("x", 64<<10+1)})
		if r := o.refusal(); r == nil || r.Check != "size" {
			t.Errorf("oversized write: %v", o.err)
		}
	})
}

func TestArguments(t *testing.T) {
	fx := newFixture(t)
	for _, c := range []struct {
		tool tools.Tool
		args map[string]any
	}{
		{fx.read, map[string]any{}},
		{fx.read, map[string]any{"path": 42}},
		{fx.read, map[string]any{"path": "/data/users.json", "offset": 3}},
		{fx.list, map[string]any{"path": "/data", "recursive": true}},
		{fx.write, map[string]any{"path": "/data/x"}},
		{fx.write, map[string]any{"path": "/data/x", "content": 7}},
		{fx.write, map[string]any{"path": "/data/x", "content": "x", "create_dirs": "yes"}},
	} {
		o := run(c.tool, c.args)
		if r := o.refusal(); r == nil || r.Check != "arguments" || o.res != nil {
			t.Errorf("%s %v: want an arguments refusal, got %v / %v", c.tool.Definition().Name, c.args, o.accessErr, o.err)
		}
	}
}

func TestAccess(t *testing.T) {
	fx := newFixture(t)
	data, _ := scope.ParseResource("filesystem:/data/*")
	for _, c := range []struct {
		tool   tools.Tool
		path   string
		target string
		action scope.Action
	}{
		{fx.read, "/data//a/./b/../users.json", "/data/a/users.json", scope.Read},
		{fx.list, "/data/", "/data", scope.List},
		{fx.write, "/data/new.txt", "/data/new.txt", scope.Write},
	} {
		args := map[string]any{"path": c.path, "content": ""}
		if c.tool != fx.write {
			delete(args, "content")
		}
		a, err := c.tool.Access(args)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if a.Kind != scope.Filesystem || a.Target != c.target || a.Action != c.action {
			t.Errorf("Access(%q) = %v", c.path, a)
		}
		if !data.Covers(a.Kind, a.Target) {
			t.Errorf("filesystem:/data/* must cover %s", a.Target)
		}
	}
	a, err := fx.read.Access(map[string]any{"path": "/database/db.txt"})
	if err != nil || data.Covers(a.Kind, a.Target) {
		t.Errorf("filesystem:/data/* must not cover %v (%v)", a, err)
	}
}

func TestDefinitions(t *testing.T) {
	fx := newFixture(t)
	for _, c := range []struct {
		tool        tools.Tool
		name        string
		readOnly    bool
		destructive bool
	}{
		{fx.read, ReadToolName, true, false},
		{fx.list, ListToolName, true, false},
		{fx.write, WriteToolName, false, true},
	} {
		d := c.tool.Definition()
		if d.Name != c.name {
			t.Errorf("name %q, want %q", d.Name, c.name)
		}
		if h := d.Annotations.ReadOnlyHint; h == nil || *h != c.readOnly {
			t.Errorf("%s: readOnlyHint %v", d.Name, h)
		}
		if h := d.Annotations.DestructiveHint; h == nil || *h != c.destructive {
			t.Errorf("%s: destructiveHint %v", d.Name, h)
		}
		if len(d.InputSchema.Required) == 0 || d.InputSchema.Required[0] != "path" {
			t.Errorf("%s: path must be required: %v", d.Name, d.InputSchema.Required)
		}
	}
}

func TestAllowHardlinks(t *testing.T) {
	fx := newFixture(t, func(o *Options) { o.AllowHardlinks = true })
	if err := os.Link(filepath.Join(fx.data, "users.json"), filepath.Join(fx.data, "twin.json")); err != nil {
		t.Skip(err)
	}
	if o := run(fx.read, map[string]any{"path": "/data/twin.json"}); o.err != nil {
		t.Fatalf("allow_hardlinks: %v", o.err)
	}
}

func TestSymlinkEscapeRefused(t *testing.T) {
	// Keeps escapeMessage in step with os.Root: if Go rewords it, this
	// fails instead of escapes turning into plain errors.
	fx := newFixture(t)
	symlink(t, fx.canaryPath, filepath.Join(fx.data, "x"))
	_, err := fx.fs.mounts[0].root.Open("x")
	if err == nil {
		t.Fatal("os.Root followed a link out of the root")
	}
	if r, ok := describe("read", "/data/x", err).(*tools.Refusal); !ok || r.Check != "symlink" {
		t.Fatalf("the os.Root escape error %q is no longer recognised", err)
	}
}

func TestFromConfig(t *testing.T) {
	cfg := configForTest(t)
	o := FromConfig(cfg)
	if len(o.Roots) != 1 || o.Roots[0].Mount != "/data" || !filepath.IsAbs(o.Roots[0].HostPath) || o.Roots[0].Access != AccessRead {
		t.Fatalf("FromConfig roots: %+v", o.Roots)
	}
	if len(o.BlockedGlobs) == 0 || o.MaxReadBytes == 0 {
		t.Fatalf("FromConfig limits: %+v", o)
	}
}

// TestToolsFollowTheConfiguration: filesystem_write is offered only with a
// read-write mount; descriptions name the mounts and their access;
// listing "/" shows the mounts, needs no scope, and nothing else.
func TestToolsFollowTheConfiguration(t *testing.T) {
	dir := t.TempDir()
	ro, err := New(Options{Roots: []Root{{HostPath: dir, Mount: "/data", Access: AccessRead}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var names []string
	for _, tl := range ro.Tools() {
		names = append(names, tl.Definition().Name)
	}
	if slices.Contains(names, WriteToolName) || len(names) != 2 {
		t.Fatalf("read-only mounts offer %v", names)
	}
	rw, err := New(Options{Roots: []Root{{HostPath: dir, Mount: "/data", Access: AccessRead}, {HostPath: t.TempDir(), Mount: "/work", Access: AccessReadWrite}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	byName := map[string]tools.Tool{}
	for _, tl := range rw.Tools() {
		byName[tl.Definition().Name] = tl
	}
	if len(byName) != 3 || byName[WriteToolName] == nil {
		t.Fatalf("with a read-write mount: %v", byName)
	}
	for _, n := range []string{ReadToolName, ListToolName, WriteToolName} {
		if d := byName[n].Definition().Description; !strings.Contains(d, "/data (read-only), /work (read-write)") {
			t.Errorf("%s description does not name the mounts: %q", n, d)
		}
	}
	list := byName[ListToolName]
	acc, err := list.Access(map[string]any{"path": "/"})
	if err != nil || !acc.Public || acc.Target != "/" {
		t.Fatalf("Access(/) = %+v, %v; want a public listing of /", acc, err)
	}
	res, err := list.Call(context.Background(), map[string]any{"path": "/"})
	if err != nil {
		t.Fatal(err)
	}
	l := res.StructuredContent.(*Listing)
	if len(l.Entries) != 2 || l.Entries[0] != (Entry{Name: "data", Type: "mount", Access: "read-only"}) || l.Entries[1] != (Entry{Name: "work", Type: "mount", Access: "read-write"}) {
		t.Fatalf("listing / = %+v", l.Entries)
	}
	if acc, err := list.Access(map[string]any{"path": "/data/.."}); err == nil {
		t.Fatalf("/data/.. lists %+v", acc)
	}
}

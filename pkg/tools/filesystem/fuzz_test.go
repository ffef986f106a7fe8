package filesystem

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVirtualPath checks canonicalisation and the tools on arbitrary
// paths: a clean path never has "..", "." or empty components; a located
// path lies inside its mount, lexically and on the host; and no read or
// listing ever returns the canary outside the roots, /etc/passwd or a host
// path. Links out of the root, a hard link to the canary and a FIFO are in
// the tree.
func FuzzVirtualPath(f *testing.F) {
	for _, a := range attacks {
		f.Add(a.path)
	}
	for _, s := range []string{"/data/users.json", "/data", "/data/a/../users.json", "/data/out/secret.txt",
		"/data/up/outside/secret.txt", "/data/hard.txt", "/data/fifo", "/data/.ssh/id_rsa"} {
		f.Add(s)
	}
	fx := newFixture(f)
	symlink(f, "/etc/passwd", filepath.Join(fx.data, "passwd"))
	symlink(f, "/", filepath.Join(fx.data, "rootfs"))
	symlink(f, "..", filepath.Join(fx.data, "up"))
	symlink(f, fx.outside, filepath.Join(fx.data, "out"))
	symlink(f, "../outside/secret.txt", filepath.Join(fx.data, "secret"))
	writeFile(f, filepath.Join(fx.data, ".ssh", "id_rsa"), "KEY")
	_ = os.Link(fx.canaryPath, filepath.Join(fx.data, "hard.txt"))
	_ = makeFIFO(filepath.Join(fx.data, "fifo"))
	hosts := map[string]string{"/data": fx.data, "/ro": fx.ro, "/database": fx.database}

	f.Fuzz(func(t *testing.T, p string) {
		if vp, err := Clean(p); err == nil {
			if !strings.HasPrefix(vp, "/") || strings.Contains(vp, "//") || (vp != "/" && strings.HasSuffix(vp, "/")) {
				t.Fatalf("Clean(%q) = %q is not canonical", p, vp)
			}
			for _, c := range splitVirtual(vp) {
				if c == "" || c == "." || c == ".." {
					t.Fatalf("Clean(%q) = %q has a %q component", p, vp, c)
				}
			}
		}
		if tg, err := fx.fs.locate(p); err == nil {
			if !hasPrefix(splitVirtual(tg.virtual), tg.mount.comps) {
				t.Fatalf("%q located at %q outside its mount %s", p, tg.virtual, tg.mount.virtual)
			}
			if joinVirtual(tg.mount.virtual, tg.rel) != tg.virtual {
				t.Fatalf("%q: mount %s + %q != %q", p, tg.mount.virtual, tg.rel, tg.virtual)
			}
			host := hosts[tg.mount.virtual]
			if h := filepath.Join(host, tg.rel); h != host && !strings.HasPrefix(h, host+string(filepath.Separator)) {
				t.Fatalf("%q maps to %q, outside %q", p, h, host)
			}
		}
		for _, tool := range []toolT{fx.read, fx.list} {
			o := callWithDeadline(t, tool, map[string]any{"path": p})
			text := o.text()
			if strings.Contains(text, fx.canary) || strings.Contains(text, passwdMarker) || strings.Contains(text, fx.base) {
				t.Fatalf("ESCAPE via %s %q: %q", tool.Definition().Name, p, text)
			}
		}
	})
}

package filesystem

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// maxSymlinkHops bounds the resolution of symbolic links inside a root.
const maxSymlinkHops = 40

// resolved returns the virtual path where the opened file f really is, with
// symbolic links inside the mount resolved, so that blocked globs apply to
// where a call lands and not only to the name it used ("/data/notes" being
// a link to "/data/.ssh"). On Linux it asks the kernel for the descriptor's
// path; elsewhere, or if that fails, it resolves rel link by link through
// the root, and accepts the answer only if the path, looked up again
// through the root, is the very file that is open (same device and inode)
// and not a link: a file moved or swapped meanwhile is refused.
//
// On Linux the kernel's answer is taken as it is, unless it ends in
// " (deleted)": the file was unlinked after it was opened, and the name
// then says nothing reliable.
func (f *FS) resolved(t target, file *os.File, fi fs.FileInfo) (string, error) {
	if t.mount.real != "" {
		if p, err := descriptorPath(file); err == nil {
			if strings.HasSuffix(p, " (deleted)") {
				return "", changed(t.virtual)
			}
			if rel, ok := relativeTo(t.mount.real, p); ok {
				return joinVirtual(t.mount.virtual, rel), nil
			}
		}
	}
	rel, err := walk(t.mount.root, t.rel)
	if err != nil {
		return "", changed(t.virtual)
	}
	again, err := t.mount.root.Lstat(rel)
	if err != nil || again.Mode()&fs.ModeSymlink != 0 || !os.SameFile(fi, again) {
		return "", changed(t.virtual)
	}
	return joinVirtual(t.mount.virtual, rel), nil
}

// landedAccess asks the pipeline whether the credential's scopes also
// cover where a call through a link landed: "/data/public/x" may be a link
// to "/data/private/x", which a scope of "/data/public/*" does not grant.
func landedAccess(ctx context.Context, asked, landed string, action scope.Action) error {
	err := tools.CheckAccess(ctx, tools.Access{Kind: scope.Filesystem, Target: landed, Action: action})
	if err != nil {
		return tools.Refuse("scope", "%s leads to %s: %v", asked, landed, err)
	}
	return nil
}

func changed(vp string) error {
	return tools.Refuse("symlink", "%s changed while it was being opened (a file or link was replaced); try again", vp)
}

// relativeTo returns p relative to the directory dir, component-wise:
// "/srv/data" is not a prefix of "/srv/database/x".
func relativeTo(dir, p string) (string, bool) {
	if dir == "/" {
		if p == "/" {
			return ".", true
		}
		return strings.TrimPrefix(p, "/"), strings.HasPrefix(p, "/")
	}
	if p == dir {
		return ".", true
	}
	rest, ok := strings.CutPrefix(p, dir+"/")
	if !ok || rest == "" {
		return "", false
	}
	for _, c := range strings.Split(rest, "/") {
		if c == "" || c == "." || c == ".." {
			return "", false
		}
	}
	return rest, true
}

// walk resolves the symbolic links of rel inside root, lexically from the
// root's point of view: absolute targets and ".." above the root are
// errors (os.Root refuses them too).
func walk(root *os.Root, rel string) (string, error) {
	pending := strings.Split(rel, "/")
	var done []string
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", errors.New("escapes the root")
			}
			done = done[:len(done)-1]
			continue
		}
		cand := path.Join(append(done, c)...)
		fi, err := root.Lstat(cand)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", errors.New("too many symbolic links")
		}
		link, err := root.Readlink(cand)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(link, "/") {
			return "", errors.New("absolute symbolic link")
		}
		pending = append(strings.Split(link, "/"), pending...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// reopenRoot opens rel in root as a Root and checks that it is the
// directory dir has open.
func reopenRoot(root *os.Root, rel string, dir *os.File) (*os.Root, error) {
	want, err := dir.Stat()
	if err != nil {
		return nil, err
	}
	r, err := root.OpenRoot(rel)
	if err != nil {
		return nil, err
	}
	got, err := r.Stat(".")
	if err != nil || !os.SameFile(want, got) {
		r.Close()
		return nil, errors.New("the directory changed while it was opened")
	}
	return r, nil
}

package filesystem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// writeTool is filesystem_write.
type writeTool struct{ fs *FS }

// Written is the structured result of filesystem_write.
type Written struct {
	Path    string `json:"path"`
	Bytes   int    `json:"bytes"`
	Created bool   `json:"created"`
}

func (t *writeTool) Definition() mcp.Tool {
	return mcp.NewTool(WriteToolName,
		mcp.WithDescription("Write a UTF-8 text file by its virtual path, replacing it atomically if it exists. "+
			"Mounted: "+t.fs.mountList()+"; only the read-write ones accept writes. Symbolic links are never written through."),
		mcp.WithString("path", mcp.Required(), mcp.Description("Virtual path of the file, such as /data/notes/todo.txt")),
		mcp.WithString("content", mcp.Required(), mcp.Description("The complete new content of the file")),
		mcp.WithBoolean("create_dirs", mcp.Description("Create missing parent directories (default false)")),
		mcp.WithOutputSchema[Written](),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

var writeArgs = []string{"path", "content", "create_dirs"}

// AccessKind is the kind and action of every call (tools.Kinded).
func (t *writeTool) AccessKind() tools.Access {
	return tools.Access{Kind: scope.Filesystem, Action: scope.Write}
}

func (t *writeTool) Access(args map[string]any) (tools.Access, error) {
	tg, err := t.fs.parse(args, writeArgs...)
	if err != nil {
		return tools.Access{}, err
	}
	return tools.Access{Kind: scope.Filesystem, Target: tg.virtual, Action: scope.Write, Changes: true}, nil
}

func (t *writeTool) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	tg, err := t.fs.parse(args, writeArgs...)
	if err != nil {
		return nil, err
	}
	content, err := tools.StringArg(args, "content")
	if err != nil {
		return nil, err
	}
	createDirs, err := boolArg(args, "create_dirs")
	if err != nil {
		return nil, err
	}
	w, err := t.fs.write(ctx, tg, content, createDirs)
	if err != nil {
		return nil, err
	}
	text, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultStructured(w, string(text)), nil
}

// write replaces the file atomically: a new file created exclusively in the
// same directory (O_EXCL never follows a link), written, synced, then
// renamed over the name. The directory is pinned by descriptor first, so
// the checks on it and the rename happen in the same directory.
func (f *FS) write(ctx context.Context, tg target, content string, createDirs bool) (*Written, error) {
	if !tg.mount.writable {
		return nil, tools.Refuse("root", "%s is mounted read-only", tg.mount.virtual)
	}
	if tg.rel == "." {
		return nil, tools.Refuse("path", "%s is a mount point, not a file", tg.virtual)
	}
	if int64(len(content)) > f.maxWrite {
		return nil, tools.Refuse("size", "the content is %d bytes; the limit is %d bytes (max_write_bytes)", len(content), f.maxWrite)
	}
	parentRel, base := path.Split(tg.rel)
	parentRel = path.Clean("./" + parentRel)
	parent := target{virtual: path.Dir(tg.virtual), mount: tg.mount, rel: parentRel}
	if createDirs && parentRel != "." {
		if err := tg.mount.root.MkdirAll(parentRel, 0o755); err != nil {
			return nil, describe("create directories", parent.virtual, err)
		}
	}
	dir, err := tg.mount.root.OpenFile(parentRel, os.O_RDONLY|openDirFlags, 0)
	if err != nil {
		return nil, describe("write", tg.virtual, err)
	}
	defer dir.Close()
	dfi, err := dir.Stat()
	if err != nil {
		return nil, describe("write", tg.virtual, err)
	}
	if !dfi.IsDir() {
		return nil, fmt.Errorf("write %s: %s is not a directory", tg.virtual, parent.virtual)
	}
	realParent, err := f.resolved(parent, dir, dfi)
	if err != nil {
		return nil, err
	}
	if landed := joinVirtual(realParent, base); landed != tg.virtual {
		if err := f.checkGlobs(landed); err != nil {
			return nil, tools.Refuse("blocked-glob", "%s is inside a link to a blocked path: %s", tg.virtual, err.Error())
		}
		if err := landedAccess(ctx, tg.virtual, landed, scope.Write); err != nil {
			return nil, err
		}
	}
	pr, err := directoryRoot(tg.mount.root, parentRel, dir)
	if err != nil {
		return nil, changed(tg.virtual)
	}
	defer pr.Close()

	perm, created, err := f.checkExisting(pr, base, tg.virtual)
	if err != nil {
		return nil, err
	}
	if err := replace(pr, base, []byte(content), perm); err != nil {
		return nil, describe("write", tg.virtual, err)
	}
	_ = dir.Sync() // make the rename durable where the system allows it
	return &Written{Path: tg.virtual, Bytes: len(content), Created: created}, nil
}

// checkExisting refuses to replace anything but a regular file with one
// link, and returns the permissions to keep.
func (f *FS) checkExisting(dir *os.Root, base, vp string) (fs.FileMode, bool, error) {
	fi, err := dir.Lstat(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0o644, true, nil
	case err != nil:
		return 0, false, describe("write", vp, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, false, tools.Refuse("symlink", "%s is a symbolic link; %s never writes through links", vp, WriteToolName)
	case fi.IsDir():
		return 0, false, fmt.Errorf("write %s: it is a directory", vp)
	case !fi.Mode().IsRegular():
		return 0, false, tools.Refuse("special-file", "%s is a %s, not a regular file", vp, kindOf(fi.Mode()))
	}
	// The rename below replaces the name, never writes through a link, so
	// the link count is checked for consistency with reads: from the
	// lstat where it carries one, else on an open handle (Windows).
	if _, ok := linkCount(nil, fi); ok {
		return fi.Mode().Perm(), false, f.checkRegular(vp, nil, fi)
	}
	file, err := dir.OpenFile(base, os.O_RDONLY|openReadFlags, 0)
	if err != nil {
		return 0, false, describe("write", vp, err)
	}
	defer file.Close()
	ofi, err := file.Stat()
	if err != nil {
		return 0, false, describe("write", vp, err)
	}
	if !os.SameFile(fi, ofi) {
		return 0, false, changed(vp)
	}
	if err := f.checkRegular(vp, file, ofi); err != nil {
		return 0, false, err
	}
	return fi.Mode().Perm(), false, nil
}

// replace writes data to a fresh temporary file in dir and renames it to
// base.
func replace(dir *os.Root, base string, data []byte, perm fs.FileMode) (err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := ".agentmesh-write-" + hex.EncodeToString(rnd[:]) + ".tmp"
	file, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = dir.Remove(tmp)
		}
	}()
	if _, err := file.Write(data); err != nil {
		file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	return dir.Rename(tmp, base)
}

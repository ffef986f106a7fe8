package filesystem

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// listTool is filesystem_list.
type listTool struct{ fs *FS }

// Listing is the structured result of filesystem_list.
type Listing struct {
	// Path is the virtual path listed.
	Path    string  `json:"path"`
	Entries []Entry `json:"entries"`
	// Truncated is set when the directory has more than MaxListEntries.
	Truncated bool `json:"truncated"`
}

// Entry is one directory entry.
type Entry struct {
	Name string `json:"name"`
	// Type is "file", "directory", "symlink", "mount" (at /) or "other".
	Type string `json:"type"`
	// Access is a mount's access, "read-only" or "read-write".
	Access string `json:"access,omitempty"`
	// Size is the size in bytes of a file (0 for other types).
	Size int64 `json:"size"`
	// Blocked is set when the entry matches a blocked glob: it is listed
	// so that the model knows why a read fails, but cannot be read.
	Blocked bool `json:"blocked,omitempty"`
}

func (t *listTool) Definition() mcp.Tool {
	return mcp.NewTool(ListToolName,
		mcp.WithDescription("List a directory by its virtual path (for example /data): each entry's name, type "+
			"(file, directory, symlink, mount, other) and size. Entries matching a blocked pattern are marked blocked. "+
			"Mounted: "+t.fs.mountList()+"; listing / shows the mounts."),
		mcp.WithString("path", mcp.Required(), mcp.Description("Virtual path of the directory, such as /data")),
		mcp.WithOutputSchema[Listing](),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// AccessKind is the kind and action of every call (tools.Kinded).
func (t *listTool) AccessKind() tools.Access {
	return tools.Access{Kind: scope.Filesystem, Action: scope.List}
}

func (t *listTool) Access(args map[string]any) (tools.Access, error) {
	if t.isRoot(args) {
		return tools.Access{Kind: scope.Filesystem, Target: "/", Action: scope.List, Public: true}, nil
	}
	tg, err := t.fs.parse(args, "path")
	if err != nil {
		return tools.Access{}, err
	}
	return tools.Access{Kind: scope.Filesystem, Target: tg.virtual, Action: scope.List}, nil
}

// isRoot: the call lists "/", the virtual root, whose entries are the
// mounts (what the description already says).
func (t *listTool) isRoot(args map[string]any) bool {
	p, ok := args["path"].(string)
	return ok && p == "/" && onlyArgs(args, "path") == nil && !t.fs.mountedAtRoot()
}

func (t *listTool) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	var l *Listing
	if t.isRoot(args) {
		l = t.fs.mountsListing()
	} else {
		tg, err := t.fs.parse(args, "path")
		if err != nil {
			return nil, err
		}
		if l, err = t.fs.list(ctx, tg); err != nil {
			return nil, err
		}
	}
	text, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultStructured(l, string(text)), nil
}

// mountsListing lists the virtual root: one entry per mount, type "mount".
func (f *FS) mountsListing() *Listing {
	l := &Listing{Path: "/", Entries: []Entry{}}
	for _, m := range f.mounts {
		access := "read-only"
		if m.writable {
			access = "read-write"
		}
		l.Entries = append(l.Entries, Entry{Name: strings.TrimPrefix(m.virtual, "/"), Type: "mount", Access: access})
	}
	return l
}

// mountedAtRoot: a mount is "/" itself, so "/" is listed as a directory.
func (f *FS) mountedAtRoot() bool {
	for _, m := range f.mounts {
		if m.virtual == "/" {
			return true
		}
	}
	return false
}

func (f *FS) list(ctx context.Context, tg target) (*Listing, error) {
	// O_DIRECTORY: a FIFO or device at this path fails to open instead of
	// blocking or being read.
	dir, err := tg.mount.root.OpenFile(tg.rel, os.O_RDONLY|openDirFlags, 0)
	if err != nil {
		return nil, describe("list", tg.virtual, err)
	}
	defer dir.Close()
	fi, err := dir.Stat()
	if err != nil {
		return nil, describe("list", tg.virtual, err)
	}
	if !fi.IsDir() {
		return nil, errors.New(tg.virtual + " is not a directory: use " + ReadToolName)
	}
	landed, err := f.resolved(tg, dir, fi)
	if err != nil {
		return nil, err
	}
	if landed != tg.virtual {
		if err := f.checkGlobs(landed); err != nil {
			return nil, tools.Refuse("blocked-glob", "%s is a link to a blocked path: %s", tg.virtual, err.Error())
		}
		if err := landedAccess(ctx, tg.virtual, landed, scope.List); err != nil {
			return nil, err
		}
	}
	// Entries opened through a root are stat'ed relative to the directory
	// descriptor (fstatat), never by a path string.
	des, err := dir.ReadDir(MaxListEntries + 1)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, describe("list", tg.virtual, err)
	}
	l := &Listing{Path: tg.virtual, Entries: make([]Entry, 0, len(des))}
	if len(des) > MaxListEntries {
		des, l.Truncated = des[:MaxListEntries], true
	}
	for _, de := range des {
		e := Entry{Name: de.Name(), Type: entryType(de.Type())}
		if e.Type == "file" {
			if info, err := de.Info(); err == nil {
				e.Size = info.Size()
			}
		}
		e.Blocked = f.blocked(joinVirtual(landed, de.Name())) || f.blocked(joinVirtual(tg.virtual, de.Name()))
		l.Entries = append(l.Entries, e)
	}
	sort.Slice(l.Entries, func(i, j int) bool { return l.Entries[i].Name < l.Entries[j].Name })
	return l, nil
}

func entryType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	default:
		return "other"
	}
}

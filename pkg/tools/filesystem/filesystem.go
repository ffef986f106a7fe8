// Package filesystem implements the built-in tools filesystem_read,
// filesystem_list and filesystem_write over host directories mounted at
// virtual paths (DESIGN.md, "Tools see virtual paths; scopes name
// resources").
//
// Tools accept and return virtual paths ("/data/users.json") only; host
// paths never appear in a result or an error. Every file operation goes
// through an [os.Root] opened on the mount's host directory, so "..",
// absolute paths and symbolic links cannot leave it, and every decision
// about a file (kind, link count, size, where it really is) is taken on the
// opened descriptor, never on a separate lookup of the path.
//
// The guards, each a *tools.Refusal with the check named in brackets:
// malformed or escaping virtual paths [path], paths outside every mount and
// writes to read-only mounts [root], symbolic links leading out of a mount
// or written through [symlink], files with more than one hard link [hardlink],
// blocked globs on the lexical and the resolved virtual path [blocked-glob],
// devices, FIFOs and sockets [special-file], size limits [size], content
// that is not UTF-8 text [binary], and malformed arguments [arguments].
package filesystem

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Tool names.
const (
	ReadToolName  = "filesystem_read"
	ListToolName  = "filesystem_list"
	WriteToolName = "filesystem_write"
)

// Access levels of a mount; the same words as agentmesh.yaml.
const (
	AccessRead      = config.AccessRead
	AccessReadWrite = config.AccessReadWrite
)

// Defaults used when an Options limit is zero.
const (
	DefaultMaxReadBytes  = 1 << 20
	DefaultMaxWriteBytes = 1 << 20
	// MaxListEntries bounds one listing; longer directories are truncated.
	MaxListEntries = 10_000
)

// Root mounts a host directory at a virtual path.
type Root struct {
	// HostPath is the host directory, already resolved (absolute).
	HostPath string
	// Mount is the virtual path tools see ("/data").
	Mount string
	// Access is AccessRead or AccessReadWrite.
	Access string
}

// Options configures the three tools.
type Options struct {
	Roots []Root
	// AllowHardlinks permits regular files with more than one hard link; a
	// hard link is an escape that path checks cannot see.
	AllowHardlinks bool
	// BlockedGlobs are refused even inside roots ("**/.ssh/**"); matched
	// case-insensitively against virtual paths, "**" spanning components.
	BlockedGlobs []string
	// MaxReadBytes: larger files are refused. Zero means the default.
	MaxReadBytes int64
	// MaxWriteBytes: larger contents are refused. Zero means the default.
	MaxWriteBytes int64
}

// FromConfig builds Options from agentmesh.yaml, resolving root paths with
// cfg.ResolvePath.
func FromConfig(cfg *config.Config) Options {
	c := cfg.Tools.Filesystem
	o := Options{
		AllowHardlinks: c.AllowHardlinks,
		BlockedGlobs:   c.BlockedGlobs,
		MaxReadBytes:   c.MaxReadBytes,
		MaxWriteBytes:  c.MaxWriteBytes,
	}
	for _, r := range c.Roots {
		o.Roots = append(o.Roots, Root{HostPath: cfg.ResolvePath(r.Path), Mount: r.Mount, Access: r.Access})
	}
	return o
}

// FS is a set of mounts and the tools over them. It is safe for concurrent
// use.
type FS struct {
	mounts         []*mount
	globs          []glob
	allowHardlinks bool
	maxRead        int64
	maxWrite       int64
}

// mount is one open root.
type mount struct {
	virtual  string   // "/data"
	comps    []string // ["data"]
	root     *os.Root
	writable bool
	// real is the root directory's host path as the kernel reports it for
	// an open descriptor (symlinks resolved); see resolve_linux.go.
	real string
}

// New opens every root. Mounts must be distinct, canonical virtual paths
// that do not nest ("/data" and "/data/x" together are an error).
func New(opts Options) (*FS, error) {
	f := &FS{
		allowHardlinks: opts.AllowHardlinks,
		maxRead:        opts.MaxReadBytes,
		maxWrite:       opts.MaxWriteBytes,
	}
	if f.maxRead == 0 {
		f.maxRead = DefaultMaxReadBytes
	}
	if f.maxWrite == 0 {
		f.maxWrite = DefaultMaxWriteBytes
	}
	if f.maxRead < 0 || f.maxWrite < 0 {
		return nil, errors.New("filesystem: max_read_bytes and max_write_bytes must not be negative")
	}
	for _, p := range opts.BlockedGlobs {
		g, err := parseGlob(p)
		if err != nil {
			return nil, fmt.Errorf("filesystem: blocked glob %q: %w", p, err)
		}
		f.globs = append(f.globs, g)
	}
	for _, r := range opts.Roots {
		m, err := openMount(r)
		if err != nil {
			f.Close()
			return nil, err
		}
		for _, other := range f.mounts {
			if hasPrefix(m.comps, other.comps) || hasPrefix(other.comps, m.comps) {
				m.root.Close()
				f.Close()
				return nil, fmt.Errorf("filesystem: mounts %s and %s overlap: mounts must not nest", other.virtual, m.virtual)
			}
		}
		f.mounts = append(f.mounts, m)
	}
	return f, nil
}

func openMount(r Root) (*mount, error) {
	vp, _, err := cleanPath(r.Mount)
	if err != nil || vp != r.Mount || vp == "/" {
		return nil, fmt.Errorf("filesystem: mount %q must be a canonical virtual path below / (like /data)", r.Mount)
	}
	var writable bool
	switch r.Access {
	case AccessRead, "":
	case AccessReadWrite:
		writable = true
	default:
		return nil, fmt.Errorf("filesystem: mount %s: access %q must be %q or %q", r.Mount, r.Access, AccessRead, AccessReadWrite)
	}
	root, err := os.OpenRoot(r.HostPath)
	if err != nil {
		return nil, fmt.Errorf("filesystem: mount %s: %w", r.Mount, err)
	}
	m := &mount{virtual: vp, comps: strings.Split(vp[1:], "/"), root: root, writable: writable}
	if d, err := root.Open("."); err == nil {
		m.real, _ = descriptorPath(d)
		d.Close()
	}
	return m, nil
}

var (
	_ tools.Tool = (*readTool)(nil)
	_ tools.Tool = (*listTool)(nil)
	_ tools.Tool = (*writeTool)(nil)
)

// Tools returns filesystem_read, filesystem_list and filesystem_write.
// filesystem_write is offered only when a mount accepts writes.
func (f *FS) Tools() []tools.Tool {
	ts := []tools.Tool{&readTool{f}, &listTool{f}}
	for _, m := range f.mounts {
		if m.writable {
			return append(ts, &writeTool{f})
		}
	}
	return ts
}

// mountList describes the mounts for tool descriptions: "/data (read-only),
// /work (read-write)".
func (f *FS) mountList() string {
	parts := make([]string, len(f.mounts))
	for i, m := range f.mounts {
		access := "read-only"
		if m.writable {
			access = "read-write"
		}
		parts[i] = m.virtual + " (" + access + ")"
	}
	return strings.Join(parts, ", ")
}

// Mounts returns the virtual paths of the mounts, in configuration order.
func (f *FS) Mounts() []string {
	out := make([]string, len(f.mounts))
	for i, m := range f.mounts {
		out[i] = m.virtual
	}
	return out
}

// Close closes every root.
func (f *FS) Close() error {
	var errs []error
	for _, m := range f.mounts {
		errs = append(errs, m.root.Close())
	}
	return errors.Join(errs...)
}

// target is one validated call: the canonical virtual path, its mount and
// the path relative to the mount's root ("." for the mount itself).
type target struct {
	virtual string
	mount   *mount
	rel     string
}

// locate canonicalises a virtual path and finds its mount.
func (f *FS) locate(p string) (target, error) {
	vp, lowest, err := cleanPath(p)
	if err != nil {
		return target{}, err
	}
	comps := splitVirtual(vp)
	for _, m := range f.mounts {
		if !hasPrefix(comps, m.comps) {
			continue
		}
		if lowest >= 0 && lowest < len(m.comps) {
			return target{}, tools.Refuse("traversal", "%s: %q components may not leave the mount %s", quoteVirtual(p), "..", m.virtual)
		}
		rel := "."
		if len(comps) > len(m.comps) {
			rel = strings.Join(comps[len(m.comps):], "/")
		}
		return target{virtual: vp, mount: m, rel: rel}, nil
	}
	if lowest >= 0 {
		return target{}, tools.Refuse("traversal", "%s: %q components may not leave a mount", quoteVirtual(p), "..")
	}
	// The path is not echoed: a caller probing with a host path should not
	// see it repeated as if it were ours.
	return target{}, tools.Refuse("root", "the path is not inside a filesystem root; mounted: %s", strings.Join(f.Mounts(), ", "))
}

// checkGlobs refuses a virtual path that matches a blocked glob.
func (f *FS) checkGlobs(vp string) error {
	for _, g := range f.globs {
		if g.match(vp) {
			return tools.Refuse("blocked-glob", "%s matches the blocked pattern %q", vp, g.pattern)
		}
	}
	return nil
}

// blocked reports whether vp matches a blocked glob.
func (f *FS) blocked(vp string) bool { return f.checkGlobs(vp) != nil }

// checkRegular refuses anything but a regular file with a single link. fi
// is the Stat of the open file (file may be nil where fi carries the link
// count).
func (f *FS) checkRegular(vp string, file *os.File, fi fs.FileInfo) error {
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory: use %s", vp, ListToolName)
	}
	if !fi.Mode().IsRegular() {
		return tools.Refuse("special-file", "%s is a %s, not a regular file", vp, kindOf(fi.Mode()))
	}
	if f.allowHardlinks {
		return nil
	}
	n, ok := linkCount(file, fi)
	if !ok {
		return tools.Refuse("hardlink", "%s: cannot tell how many hard links it has on this system; set allow_hardlinks to permit it", vp)
	}
	if n > 1 {
		return tools.Refuse("hardlink", "%s has %d hard links; a hard link can reach a file outside the root, so such files are refused (allow_hardlinks permits them)", vp, n)
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}

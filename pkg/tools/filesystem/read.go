package filesystem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// readTool is filesystem_read.
type readTool struct{ fs *FS }

func (t *readTool) Definition() mcp.Tool {
	return mcp.NewTool(ReadToolName,
		mcp.WithDescription("Read a UTF-8 text file by its virtual path (for example /data/users.json). "+
			"Mounted: "+t.fs.mountList()+"; every path starts with one of them. "+
			"Files larger than the configured limit, binary files, special files, files with several hard links "+
			"and blocked paths (such as **/.env) are refused."),
		mcp.WithString("path", mcp.Required(), mcp.Description("Virtual path of the file, starting with a mount such as /data")),
		mcp.WithNumber("max_bytes", mcp.Description("Return at most this many bytes (the result then says it was truncated)"), mcp.Min(1)),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	)
}

// AccessKind is the kind and action of every call (tools.Kinded).
func (t *readTool) AccessKind() tools.Access {
	return tools.Access{Kind: scope.Filesystem, Action: scope.Read}
}

func (t *readTool) Access(args map[string]any) (tools.Access, error) {
	tg, err := t.fs.parse(args, "path", "max_bytes")
	if err != nil {
		return tools.Access{}, err
	}
	return tools.Access{Kind: scope.Filesystem, Target: tg.virtual, Action: scope.Read}, nil
}

func (t *readTool) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	tg, err := t.fs.parse(args, "path", "max_bytes")
	if err != nil {
		return nil, err
	}
	limit, err := intArg(args, "max_bytes", t.fs.maxRead, t.fs.maxRead)
	if err != nil {
		return nil, err
	}
	data, total, err := t.fs.read(ctx, tg, limit)
	if err != nil {
		return nil, err
	}
	res := mcp.NewToolResultText(string(data))
	if int64(len(data)) < total {
		res.Content = append(res.Content, mcp.NewTextContent(fmt.Sprintf("[truncated: %d of %d bytes of %s shown]", len(data), total, tg.virtual)))
	}
	return res, nil
}

// parse validates the arguments common to the three tools and locates the
// path; the lexical virtual path must not match a blocked glob.
func (f *FS) parse(args map[string]any, names ...string) (target, error) {
	if err := onlyArgs(args, names...); err != nil {
		return target{}, err
	}
	p, err := tools.StringArg(args, "path")
	if err != nil {
		return target{}, err
	}
	tg, err := f.locate(p)
	if err != nil {
		return target{}, err
	}
	return tg, f.checkGlobs(tg.virtual)
}

// read returns up to limit bytes of the file and its size. Every decision
// is taken on the open descriptor: its kind, link count, size and real
// location.
func (f *FS) read(ctx context.Context, tg target, limit int64) ([]byte, int64, error) {
	file, err := tg.mount.root.OpenFile(tg.rel, os.O_RDONLY|openReadFlags, 0)
	if err != nil {
		return nil, 0, describe("read", tg.virtual, err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, 0, describe("read", tg.virtual, err)
	}
	if err := f.checkRegular(tg.virtual, file, fi); err != nil {
		return nil, 0, err
	}
	landed, err := f.resolved(tg, file, fi)
	if err != nil {
		return nil, 0, err
	}
	if landed != tg.virtual {
		if err := f.checkGlobs(landed); err != nil {
			return nil, 0, tools.Refuse("blocked-glob", "%s is a link to a blocked path: %s", tg.virtual, err.Error())
		}
		if err := landedAccess(ctx, tg.virtual, landed, scope.Read); err != nil {
			return nil, 0, err
		}
	}
	size := fi.Size()
	if size > f.maxRead {
		return nil, 0, tools.Refuse("size", "%s is %d bytes; the limit is %d bytes (max_read_bytes)", tg.virtual, size, f.maxRead)
	}
	// Read one byte more than allowed: a file that grew since the Stat
	// must not slip past the limit.
	want := min(limit, f.maxRead) + 1
	var buf bytes.Buffer
	buf.Grow(int(min(size, want)))
	if _, err := io.Copy(&buf, io.LimitReader(file, want)); err != nil {
		return nil, 0, describe("read", tg.virtual, err)
	}
	data := buf.Bytes()
	total := max(size, int64(len(data)))
	if int64(len(data)) > f.maxRead {
		return nil, 0, tools.Refuse("size", "%s grew past the limit of %d bytes while it was read", tg.virtual, f.maxRead)
	}
	if int64(len(data)) > limit {
		data = trimRune(data[:limit])
	}
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return nil, 0, tools.Refuse("binary", "%s is not UTF-8 text; binary content is refused because redaction can only inspect text", tg.virtual)
	}
	return data, total, nil
}

// trimRune drops a UTF-8 sequence cut in half at the end of b.
func trimRune(b []byte) []byte {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if r, n := utf8.DecodeRune(b[len(b)-i:]); r == utf8.RuneError && n <= 1 {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

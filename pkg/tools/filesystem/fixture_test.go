package filesystem

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// fixture is a temporary tree:
//
//	base/data      mounted read-write at /data
//	base/ro        mounted read-only at /ro
//	base/database  mounted read-only at /database (prefix look-alike)
//	base/outside   in no mount; holds the canary
type fixture struct {
	base, data, ro, database, outside string
	canaryPath                        string
	canary                            string
	fs                                *FS
	read, list, write                 tools.Tool
}

var defaultGlobs = []string{"**/.ssh/**", "**/.env", "**/*.pem", "**/id_rsa*"}

func newFixture(t testing.TB, mutate ...func(*Options)) *fixture {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	fx := &fixture{
		base:     base,
		data:     filepath.Join(base, "data"),
		ro:       filepath.Join(base, "ro"),
		database: filepath.Join(base, "database"),
		outside:  filepath.Join(base, "outside"),
		canary:   "CANARY-" + hex.EncodeToString(rnd[:]),
	}
	fx.canaryPath = filepath.Join(fx.outside, "secret.txt")
	for _, d := range []string{fx.data, fx.ro, fx.database, fx.outside} {
		mkdir(t, d)
	}
	writeFile(t, fx.canaryPath, fx.canary)
	writeFile(t, filepath.Join(fx.data, "users.json"), `[{"id":1,"name":"Ada"}]`)
	writeFile(t, filepath.Join(fx.data, "only-in-data.txt"), "data root")
	writeFile(t, filepath.Join(fx.ro, "readme.txt"), "read-only mount")
	writeFile(t, filepath.Join(fx.database, "db.txt"), "database mount")
	opts := Options{
		Roots: []Root{
			{HostPath: fx.data, Mount: "/data", Access: AccessReadWrite},
			{HostPath: fx.ro, Mount: "/ro", Access: AccessRead},
			{HostPath: fx.database, Mount: "/database", Access: AccessRead},
		},
		BlockedGlobs:  defaultGlobs,
		MaxReadBytes:  64 << 10,
		MaxWriteBytes: 64 << 10,
	}
	for _, m := range mutate {
		m(&opts)
	}
	fx.fs, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.fs.Close() })
	ts := fx.fs.Tools()
	fx.read, fx.list, fx.write = ts[0], ts[1], ts[2]
	return fx
}

func mkdir(t testing.TB, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, p, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t testing.TB, target, link string) {
	t.Helper()
	mkdir(t, filepath.Dir(link))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// outcome is one tool call: Access, then Call (as the pipeline would, but
// Call runs even if Access refused, so that both are exercised).
type outcome struct {
	access    tools.Access
	accessErr error
	res       *mcp.CallToolResult
	err       error
}

func run(tool tools.Tool, args map[string]any) outcome {
	var o outcome
	o.access, o.accessErr = tool.Access(args)
	o.res, o.err = tool.Call(context.Background(), args)
	return o
}

// text is everything the call let out: result content, structured content
// and error messages.
func (o outcome) text() string {
	var b strings.Builder
	if o.accessErr != nil {
		b.WriteString(o.accessErr.Error() + "\n")
	}
	if o.err != nil {
		b.WriteString(o.err.Error() + "\n")
	}
	if o.res != nil {
		for _, c := range o.res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				b.WriteString(tc.Text + "\n")
			}
		}
		if o.res.StructuredContent != nil {
			j, _ := json.Marshal(o.res.StructuredContent)
			b.Write(j)
		}
	}
	return b.String()
}

// refusal returns the refusal of Call, or of Access if Call did not
// refuse.
func (o outcome) refusal() *tools.Refusal {
	var r *tools.Refusal
	if errors.As(o.err, &r) {
		return r
	}
	if errors.As(o.accessErr, &r) {
		return r
	}
	return nil
}

func (o outcome) resultText() string {
	if o.res == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range o.res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

type toolT = tools.Tool

// runWithDeadline fails the test if a call blocks (a FIFO opened for
// reading waits for a writer forever).
func runWithDeadline(t *testing.T, tool tools.Tool, args map[string]any) outcome {
	t.Helper()
	ch := make(chan outcome, 1)
	go func() { ch <- run(tool, args) }()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatalf("the call blocked for 10s")
		return outcome{}
	}
}

// configForTest is the embedded defaults with a temporary state directory.
func configForTest(t *testing.T) *config.Config {
	cfg := config.Default()
	cfg.Source = config.Source{StateDir: t.TempDir()}
	return &cfg
}

// callWithDeadline is Call alone (no Access), failing if it blocks.
func callWithDeadline(t *testing.T, tool tools.Tool, args map[string]any) outcome {
	t.Helper()
	ch := make(chan outcome, 1)
	go func() {
		var o outcome
		o.res, o.err = tool.Call(context.Background(), args)
		ch <- o
	}()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatalf("the call blocked for 10s")
		return outcome{}
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// fleet is one deployment of agentmesh as a fleet: a configuration and a
// state directory (the identity every replica shares) in a temp dir, and
// one PostgreSQL schema holding the log, trust, limits, keys and pins.
// Replicas and CLI commands are real processes of the test binary.
type fleet struct {
	t   *testing.T
	dir string
	url string
}

// fleetConfig serves /data (read-only) from the workspace's data
// directory, with only the filesystem tools, and the policies in
// policies/ (none: the built-in default applies).
const fleetConfig = `agent: {name: fleet, sponsor: ops@example.com}
state_dir: state
policies: {paths: [policies]}
tools:
  filesystem:
    roots:
      - {path: data, mount: /data, access: read}
  database: {enabled: false}
  api: {enabled: false}
  code: {enabled: false}
`

// newFleet makes a fleet on its own schema of the test database (or skips
// the test when there is none), with config appended to fleetConfig and
// the identity created once, as an operator does before starting replicas.
func newFleet(t *testing.T, config string) *fleet {
	t.Helper()
	return newFleetOn(t, pgtest.URL(t), config)
}

func newFleetOn(t *testing.T, url, config string) *fleet {
	t.Helper()
	f := &fleet{t: t, dir: t.TempDir(), url: url}
	for _, d := range []string{"home/.config", "data", "policies"} {
		if err := os.MkdirAll(filepath.Join(f.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f.write("agentmesh.yaml", fleetConfig+config)
	if _, stderr, code := f.agentmesh("identity", "create", "--name", "fleet", "--sponsor", "ops@example.com"); code != 0 {
		t.Fatalf("identity create: exit %d: %s", code, stderr)
	}
	return f
}

func (f *fleet) write(name, data string) {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// dataFiles writes n files data/f0000.txt… whose contents are fileText(i),
// so that each call of a run reads its own file and its audit entry can
// be told from every other's.
func (f *fleet) dataFiles(n int) {
	f.t.Helper()
	for i := 0; i < n; i++ {
		f.write(filepath.Join("data", fileName(i)), fileText(i))
	}
}

func fileName(i int) string { return fmt.Sprintf("f%04d.txt", i) }
func filePath(i int) string { return "/data/" + fileName(i) }
func fileText(i int) string { return fmt.Sprintf("contents of file %d\n", i) }
func (f *fleet) env() []string {
	return []string{"HOME=" + filepath.Join(f.dir, "home"), "XDG_CONFIG_HOME=" + filepath.Join(f.dir, "home/.config"),
		"PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "TMPDIR=" + os.TempDir(), "AGENTMESH_DATABASE_URL=" + f.url}
}

func (f *fleet) config() string { return filepath.Join(f.dir, "agentmesh.yaml") }

// agentmesh runs a CLI command against the fleet's configuration and
// database (AGENTMESH_DATABASE_URL).
func (f *fleet) agentmesh(args ...string) (stdout, stderr string, code int) {
	f.t.Helper()
	exe, err := exec.LookPath("agentmesh")
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"--config", f.config()}, args...)...)
	cmd.Env, cmd.Dir = f.env(), f.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		f.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// replica is one `agentmesh serve --http 127.0.0.1:0` process of the fleet.
type replica struct {
	name    string
	cmd     *exec.Cmd
	url     string // http://ADDR/mcp
	metrics string // http://ADDR of --metrics, if asked for
	stderr  *tail
	exited  chan struct{}
	raced   atomic.Bool // the race detector reported (go test -race)
}

// tail keeps the last lines a process wrote, for failure messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (l *tail) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lines = append(l.lines, s); len(l.lines) > 40 {
		l.lines = l.lines[1:]
	}
}

func (l *tail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var (
	listeningRE = regexp.MustCompile(`agentmesh: listening on (http://\S+/mcp)`)
	metricsRE   = regexp.MustCompile(`agentmesh: metrics on (http://\S+)/metrics`)
)

// start runs a replica in its own process group (the whole group is
// killed at the end of the test) and waits until it listens.
func (f *fleet) start(name string, args ...string) *replica {
	f.t.Helper()
	exe, err := exec.LookPath("agentmesh")
	if err != nil {
		f.t.Fatal(err)
	}
	args = append([]string{"--config", f.config(), "serve", "--quiet", "--http", "127.0.0.1:0"}, args...)
	wantMetrics := strings.Contains(strings.Join(args, " "), "--metrics")
	cmd := exec.Command(exe, args...)
	cmd.Env, cmd.Dir = f.env(), f.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	r := &replica{name: name, cmd: cmd, stderr: &tail{}, exited: make(chan struct{})}
	f.t.Cleanup(func() {
		r.stop()
		// 66: the race detector's exit status, when it reported at exit.
		if r.raced.Load() || r.cmd.ProcessState.ExitCode() == 66 {
			f.t.Errorf("replica %s: the race detector reported a data race (its stderr):\n%s", name, r.stderr)
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			r.stderr.add(line)
			if strings.Contains(line, "WARNING: DATA RACE") {
				r.raced.Store(true)
			}
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				r.metrics = m[1]
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil && r.url == "" {
				r.url = m[1]
				close(ready)
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	go func() { cmd.Wait(); close(r.exited) }()
	select {
	case <-ready:
	case <-r.exited:
		f.t.Fatalf("replica %s exited before listening:\n%s", name, r.stderr)
	case <-time.After(30 * time.Second):
		f.t.Fatalf("replica %s did not listen within 30 s:\n%s", name, r.stderr)
	}
	if wantMetrics && r.metrics == "" {
		f.t.Fatalf("replica %s listens but named no metrics address:\n%s", name, r.stderr)
	}
	return r
}

// kill sends SIGKILL to the replica alone (its children stay until
// stop), as a crash or an OOM kill would.
func (r *replica) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

// stop ends the replica's process group: SIGTERM (the replica flushes
// and exits), SIGKILL after 10 s.
func (r *replica) stop() {
	pgid := r.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-r.exited
}

// mcpClient is one MCP client session with a replica.
type mcpClient struct {
	c   *client.Client
	ctx context.Context
}

// connect opens an initialized MCP session with r over streamable HTTP;
// headers are sent with every request (Authorization).
func connect(t *testing.T, r *replica, name string, headers map[string]string) *mcpClient {
	t.Helper()
	c, err := connectErr(t, r, name, headers)
	if err != nil {
		t.Fatalf("connecting %s to replica %s: %v\n%s", name, r.name, err, r.stderr)
	}
	return c
}

func connectErr(t *testing.T, r *replica, name string, headers map[string]string) (*mcpClient, error) {
	c, err := client.NewStreamableHttpClient(r.url, transport.WithHTTPHeaders(headers), transport.WithHTTPTimeout(30*time.Second))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { c.Close(); cancel() })
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, err
	}
	return &mcpClient{c: c, ctx: ctx}, nil
}

// result is what a client saw of one tools/call: a transport or protocol
// error (err), or a result with its text and isError.
type result struct {
	text    string
	isError bool
	err     error
}

// ok says whether the call was acknowledged as done: a result that is
// not an error. Only these must be in the audit log.
func (r result) ok() bool { return r.err == nil && !r.isError }

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	if r.isError {
		return "isError: " + r.text
	}
	return "ok: " + r.text
}

func (c *mcpClient) call(tool string, args map[string]any) result {
	return c.callMeta(tool, args, nil)
}

func (c *mcpClient) callMeta(tool string, args map[string]any, meta *mcp.Meta) result {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments, req.Params.Meta = tool, args, meta
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	res, err := c.c.CallTool(ctx, req)
	if err != nil {
		return result{err: err}
	}
	var text strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return result{text: text.String(), isError: res.IsError}
}

// read reads file i through the client.
func (c *mcpClient) read(i int) result {
	return c.call("filesystem_read", map[string]any{"path": filePath(i)})
}

// unauthorized says whether err is the transport's 401.
func unauthorized(err error) bool {
	var a *transport.AuthorizationRequiredError
	return errors.As(err, &a)
}

// logRow is one row of the fleet's audit_entries table, decoded.
type logRow struct {
	seq   int64
	entry audit.Entry
}

// auditLog reads the whole PostgreSQL log, checks that its seqs are
// 0..N-1 without a gap, that each entry's own seq is its row's, and that
// the tree row says N; it returns the entries in order.
func (f *fleet) auditLog() []audit.Entry {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT seq, entry FROM audit_entries ORDER BY seq`)
	if err != nil {
		f.t.Fatal(err)
	}
	var log []audit.Entry
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			f.t.Fatal(err)
		}
		if seq != int64(len(log)) {
			f.t.Fatalf("audit_entries: seq %d follows %d entries: the seqs are not contiguous", seq, len(log))
		}
		e, err := audit.Unmarshal(raw)
		if err != nil {
			f.t.Fatalf("audit entry %d: %v", seq, err)
		}
		if int64(e.Seq) != seq {
			f.t.Fatalf("the entry in row %d says seq %d", seq, e.Seq)
		}
		log = append(log, e)
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	var size int64
	if err := conn.QueryRow(ctx, `SELECT size FROM audit_tree_state WHERE id = 1`).Scan(&size); err != nil {
		f.t.Fatal(err)
	}
	if size != int64(len(log)) {
		f.t.Fatalf("audit_tree_state says %d entries, audit_entries holds %d", size, len(log))
	}
	return log
}

// verifyLog runs `agentmesh audit verify --database URL` and checks that
// it passes and reports size entries.
func (f *fleet) verifyLog(size int) {
	f.t.Helper()
	out, stderr, code := f.agentmesh("audit", "verify", "--database", f.url, "--output", "json")
	var v verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		f.t.Fatalf("audit verify --database: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	if code != 0 || !v.OK || v.Size != int64(size) {
		f.t.Fatalf("audit verify --database: exit %d, %+v, want ok with %d entries\n%s", code, v, size, stderr)
	}
	f.t.Logf("audit verify --database: ok, %d entries, root %s", v.Size, v.Root)
}

// readsLogged maps each file read by a tool_invocation entry to its
// results, in log order.
func readsLogged(log []audit.Entry) map[string][]audit.Result {
	m := map[string][]audit.Result{}
	for _, e := range log {
		if e.Action != audit.ActionToolInvocation || e.Tool != "filesystem_read" {
			continue
		}
		var p struct {
			Path string `json:"path"`
		}
		if json.Unmarshal(e.Params, &p) == nil {
			m[p.Path] = append(m[p.Path], e.Result)
		}
	}
	return m
}

// within polls ok every 50 ms until it holds, and fails the test if it
// does not within 1 s; it returns how long it took.
func within(t *testing.T, what string, ok func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(time.Second)
	for calls := 1; ; calls++ {
		good, last := ok()
		if good {
			d := time.Since(start)
			t.Logf("%s: after %v (check %d)", what, d.Round(time.Millisecond), calls)
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 1 s; last: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// workspace is a configuration, its state directory and a private HOME
// (the witness lives under $XDG_CONFIG_HOME), as a user has them.
type workspace struct {
	t   *testing.T
	dir string
}

const integrityConfig = `agent: {name: srv, sponsor: devops@company.com}
state_dir: state
tools:
  filesystem:
    roots:
      - {path: data, mount: /data, access: read-write}
`

func newWorkspace(t *testing.T) *workspace {
	t.Helper()
	dir := t.TempDir()
	w := &workspace{t: t, dir: dir}
	for _, d := range []string{"home/.config", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w.write("agentmesh.yaml", integrityConfig)
	w.write("data/notes.txt", "meeting at noon\n")
	return w
}

func (w *workspace) write(name, data string) {
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(data), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func (w *workspace) env() []string {
	return []string{"HOME=" + filepath.Join(w.dir, "home"), "XDG_CONFIG_HOME=" + filepath.Join(w.dir, "home/.config"),
		"PATH=" + os.Getenv("PATH"), "NO_COLOR=1", "TMPDIR=" + os.TempDir()}
}

func (w *workspace) db() string { return filepath.Join(w.dir, "state", "agentmesh.db") }

// agentmesh runs the binary (testscript puts it on PATH) in the workspace.
func (w *workspace) agentmesh(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	exe, err := exec.LookPath("agentmesh")
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"--config", filepath.Join(w.dir, "agentmesh.yaml")}, args...)...)
	cmd.Env, cmd.Dir = w.env(), w.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// session is a real `agentmesh serve` over stdio with the mcp-go client.
type session struct {
	c   *client.Client
	ctx context.Context
}

func (w *workspace) serve() (*session, func(), error) {
	exe, err := exec.LookPath("agentmesh")
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := client.NewStdioMCPClient(exe, w.env(), "serve", "--quiet", "--config", filepath.Join(w.dir, "agentmesh.yaml"))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "integrity-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		cancel()
		return nil, nil, err
	}
	return &session{c: c, ctx: ctx}, func() { c.Close(); cancel() }, nil
}

// call makes one tool call and returns its text and isError.
func (s *session) call(t *testing.T, tool string, args map[string]any) (string, bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := s.c.CallTool(s.ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return text.String(), res.IsError
}

// calls makes n ordinary calls: reads, lists, writes and refusals.
func (s *session) calls(t *testing.T, n, from int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		switch i % 4 {
		case 0:
			s.call(t, "filesystem_read", map[string]any{"path": "/data/notes.txt"})
		case 1:
			s.call(t, "filesystem_write", map[string]any{"path": fmt.Sprintf("/data/out-%d.txt", i), "content": "x"})
		case 2:
			s.call(t, "filesystem_list", map[string]any{"path": "/data"})
		case 3:
			s.call(t, "filesystem_read", map[string]any{"path": "/data/../../etc/passwd"})
		}
	}
}

// copyTree copies a workspace (state, data, witness) as a backup would.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sqlite opens the state database behind agentmesh's back, as an attacker
// with write access to the state directory would.
func (w *workspace) sqlite() *sql.DB {
	db, err := sql.Open("sqlite", w.db())
	if err != nil {
		w.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func (w *workspace) exec(q string, args ...any) {
	w.t.Helper()
	db := w.sqlite()
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		w.t.Fatalf("%s: %v", q, err)
	}
}

func (w *workspace) entry(seq int64) audit.Entry {
	w.t.Helper()
	db := w.sqlite()
	defer db.Close()
	var raw []byte
	if err := db.QueryRow(`SELECT entry FROM audit_entries WHERE seq = ?`, seq).Scan(&raw); err != nil {
		w.t.Fatal(err)
	}
	e, err := audit.Unmarshal(raw)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// rehash recomputes the whole stored tree from the entries, as an
// attacker who knows RFC 6962 does after editing them.
func (w *workspace) rehash() {
	w.t.Helper()
	db := w.sqlite()
	defer db.Close()
	rows, err := db.Query(`SELECT entry FROM audit_entries ORDER BY seq`)
	if err != nil {
		w.t.Fatal(err)
	}
	var tree audit.MemoryTree
	for rows.Next() {
		var raw []byte
		rows.Scan(&raw)
		tree.Append(raw)
	}
	rows.Close()
	if _, err := db.Exec(`DELETE FROM audit_hashes`); err != nil {
		w.t.Fatal(err)
	}
	n := tlog.StoredHashCount(tree.Size())
	for i := int64(0); i < n; i++ {
		h, _ := tree.ReadHashes([]int64{i})
		if _, err := db.Exec(`INSERT INTO audit_hashes(idx, hash) VALUES (?, ?)`, i, h[0][:]); err != nil {
			w.t.Fatal(err)
		}
	}
}

// rewrite replaces entry seq by e, canonically encoded, columns included.
func (w *workspace) rewrite(seq int64, e audit.Entry) {
	w.t.Helper()
	b, err := audit.Marshal(e)
	if err != nil {
		w.t.Fatal(err)
	}
	w.exec(`UPDATE audit_entries SET entry = ?, tool = ?, result = ?, action = ? WHERE seq = ?`, b, e.Tool, string(e.Result), string(e.Action), seq)
}

func (w *workspace) checkpointNote() []byte {
	db := w.sqlite()
	defer db.Close()
	var note []byte
	db.QueryRow(`SELECT note FROM audit_checkpoint`).Scan(&note)
	return note
}

func (w *workspace) witnessFile() string {
	m, _ := filepath.Glob(filepath.Join(w.dir, "home/.config/agentmesh/witness/*.checkpoint"))
	if len(m) != 1 {
		w.t.Fatalf("want one witness file, found %v", m)
	}
	return m[0]
}

func readFile(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// verifyJSON runs audit verify with --output json and returns its verdict.
type verdict struct {
	OK   bool   `json:"ok"`
	Kind string `json:"kind"`
	Seq  *int64 `json:"seq"`
	Mode string `json:"mode"`
	Size int64  `json:"size"`
	Root string `json:"root"`
}

func (w *workspace) verify(args ...string) (verdict, int, string) {
	out, errOut, code := w.agentmesh(append([]string{"audit", "verify", "--output", "json"}, args...)...)
	var v verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		w.t.Fatalf("audit verify %v: %v\n%s%s", args, err, out, errOut)
	}
	return v, code, out
}

// logBase is a log written by real serve processes: phase 1, a full
// verification (signed record: where --incremental starts), phase 2.
type logBase struct {
	dir     string
	older   string // a copy taken at the end of phase 1
	p1, n   int64  // sizes after phase 1 and at the end
	target  int64  // an entry of phase 2 that starts a commit
	history []int64
}

func buildBase(t *testing.T) *logBase {
	w := newWorkspace(t)
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 24, 0)
	stop()
	if _, errOut, code := w.agentmesh("audit", "verify"); code != 0 {
		t.Fatalf("verify after phase 1: %s", errOut)
	}
	b := &logBase{dir: w.dir, older: t.TempDir()}
	copyTree(t, w.dir, b.older)
	b.p1 = sizeOf(t, w)
	s, stop, err = w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 40, 24)
	stop()
	b.n = sizeOf(t, w)
	db := w.sqlite()
	defer db.Close()
	rows, err := db.Query(`SELECT size FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s int64
		rows.Scan(&s)
		b.history = append(b.history, s)
		if b.target == 0 && s >= b.p1+12 && s%2 == 0 {
			b.target = s
		}
	}
	rows.Close()
	if b.target == 0 || b.target+4 >= b.n {
		t.Fatalf("no commit boundary to tamper with in phase 2 (p1 %d, n %d, history %v)", b.p1, b.n, b.history)
	}
	return b
}

func sizeOf(t *testing.T, w *workspace) int64 {
	db := w.sqlite()
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM audit_entries`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTamperMatrixServe tampers with a log written by real serve processes
// in every way an attacker with write access to the state directory (but
// no key) can, and checks what full verify, --incremental, status and the
// next serve make of it.
func TestTamperMatrixServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real serve processes")
	}
	b := buildBase(t)
	tg := b.target
	type tc struct {
		name   string
		tamper func(w *workspace)
		kind   string
		seq    int64 // -1: none
		// incremental and status must detect it (they rely on it).
		incremental, status bool
		// then: the next serve must refuse to start on this state.
		then bool
	}
	noSeq := int64(-1)
	cases := []tc{
		{name: "entry byte flip", kind: "content changed", seq: tg, incremental: true, tamper: func(w *workspace) {
			db := w.sqlite()
			defer db.Close()
			var raw []byte
			db.QueryRow(`SELECT entry FROM audit_entries WHERE seq = ?`, tg).Scan(&raw)
			i := bytes.Index(raw, []byte(`"tool":"`)) + len(`"tool":"`)
			raw[i] ^= 0x01
			if _, err := db.Exec(`UPDATE audit_entries SET entry = ? WHERE seq = ?`, raw, tg); err != nil {
				w.t.Fatal(err)
			}
		}},
		{name: "indexed column edit", kind: "column copy changed", seq: tg, incremental: true, tamper: func(w *workspace) {
			w.exec(`UPDATE audit_entries SET tool = 'innocent' WHERE seq = ?`, tg)
		}},
		{name: "middle entry deleted", kind: "missing entry", seq: tg, incremental: true, tamper: func(w *workspace) {
			w.exec(`DELETE FROM audit_entries WHERE seq = ?`, tg)
		}},
		{name: "two entries swapped", kind: "reordered", seq: tg, incremental: true, tamper: func(w *workspace) {
			a, c := w.entry(tg), w.entry(tg+1)
			ab, _ := audit.Marshal(a)
			cb, _ := audit.Marshal(c)
			w.exec(`UPDATE audit_entries SET entry = ? WHERE seq = ?`, cb, tg)
			w.exec(`UPDATE audit_entries SET entry = ? WHERE seq = ?`, ab, tg+1)
		}},
		{name: "truncated and an older checkpoint restored", kind: "rollback", seq: tg, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			db := w.sqlite()
			defer db.Close()
			var note []byte
			db.QueryRow(`SELECT note FROM audit_checkpoints WHERE size = ?`, tg).Scan(&note)
			for _, q := range []string{`DELETE FROM audit_entries WHERE seq >= ?`, `DELETE FROM audit_checkpoints WHERE size > ?`} {
				db.Exec(q, tg)
			}
			db.Exec(`DELETE FROM audit_hashes WHERE idx >= ?`, tlog.StoredHashIndex(0, tg))
			db.Exec(`UPDATE audit_checkpoint SET note = ?, size = ?`, note, tg)
		}},
		{name: "checkpoint signed by another key", kind: "unknown key", seq: noSeq, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			note := w.checkpointNote()
			body, _, _ := bytes.Cut(note, []byte("\n\n"))
			cp, err := audit.ParseCheckpoint(append(body, '\n'))
			if err != nil {
				w.t.Fatal(err)
			}
			_, priv, _ := edKey()
			signer, _ := audit.NewSigner(cp.Origin, priv)
			forged, _ := audit.SignCheckpoint(cp, signer)
			w.exec(`UPDATE audit_checkpoint SET note = ?`, forged)
		}},
		{name: "checkpoint size and root edited", kind: "signature invalid", seq: noSeq, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			lines := strings.SplitN(string(w.checkpointNote()), "\n", 4)
			lines[1] = fmt.Sprint(b.n - 3)
			lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			w.exec(`UPDATE audit_checkpoint SET note = ?, size = ?`, []byte(strings.Join(lines, "\n")), b.n-3)
		}},
		{name: "cached leaf hash edited", kind: "stored hash changed", seq: tg, incremental: true, tamper: func(w *workspace) {
			w.exec(`UPDATE audit_hashes SET hash = zeroblob(32) WHERE idx = ?`, tlog.StoredHashIndex(0, tg))
		}},
		{name: "level-1 hash edited", kind: "stored hash changed", seq: tg, incremental: true, tamper: func(w *workspace) {
			w.exec(`UPDATE audit_hashes SET hash = zeroblob(32) WHERE idx = ?`, tlog.StoredHashIndex(1, tg/2))
		}},
		{name: "witness deleted", kind: "witness missing", seq: noSeq, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			os.Remove(w.witnessFile())
		}},
		{name: "edit and rehash, then a call", kind: "content changed", seq: tg, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			e := w.entry(tg)
			e.Reason = "nothing to see here"
			w.rewrite(tg, e)
			w.rehash()
		}},
		{name: "delete, renumber and rehash, then calls", kind: "missing entry", seq: tg, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			w.exec(`DELETE FROM audit_entries WHERE seq = ?`, tg)
			for s := tg + 1; s < b.n; s++ {
				e := w.entry(s)
				e.Seq = uint64(s - 1)
				if e.Intent != nil {
					switch {
					case int64(*e.Intent) == tg:
						e.Intent = nil
					case int64(*e.Intent) > tg:
						*e.Intent--
					}
				}
				raw, err := audit.Marshal(e)
				if err != nil {
					w.t.Fatal(err)
				}
				w.exec(`UPDATE audit_entries SET seq = ?, entry = ? WHERE seq = ?`, s-1, raw, s)
			}
			w.rehash()
		}},
		{name: "rolled back, then growth past the witness", kind: "rollback", seq: b.p1, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			for _, f := range []string{"agentmesh.db", "agentmesh.db-wal", "agentmesh.db-shm"} {
				os.Remove(filepath.Join(w.dir, "state", f))
				if old := readFile(w.t, filepath.Join(b.older, "state", f)); old != nil {
					os.WriteFile(filepath.Join(w.dir, "state", f), old, 0o600)
				}
			}
		}},
		{name: "emptied database", kind: "rollback", seq: 0, incremental: true, status: true, then: true, tamper: func(w *workspace) {
			for _, f := range []string{"agentmesh.db-wal", "agentmesh.db-shm"} {
				os.Remove(filepath.Join(w.dir, "state", f))
			}
			if err := os.Truncate(w.db(), 0); err != nil {
				w.t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &workspace{t: t, dir: t.TempDir()}
			copyTree(t, b.dir, w.dir)
			witness := w.witnessFile()
			c.tamper(w)
			cpBefore, witBefore := w.checkpointNote(), readFile(t, witness)
			if c.status {
				if _, _, code := w.agentmesh("status", "--output", "json"); code != 1 {
					t.Errorf("status exit %d, want 1 (critical)", code)
				}
			}
			if c.incremental {
				v, code, out := w.verify("--incremental")
				if code != 1 || v.OK {
					t.Errorf("--incremental exit %d, want 1:\n%s", code, out)
				}
			}
			v, code, out := w.verify()
			if code != 1 || v.Kind != c.kind || (c.seq >= 0) != (v.Seq != nil) || v.Seq != nil && *v.Seq != c.seq {
				t.Errorf("verify exit %d, %s at %v; want exit 1, %s at seq %d:\n%s", code, v.Kind, derefSeq(v.Seq), c.kind, c.seq, out)
			}
			if _, errOut, code := w.agentmesh("status"); code != 1 {
				t.Errorf("status after a failed verify: exit %d, want 1 (the failure latches)\n%s", code, errOut)
			}
			if c.then {
				_, errOut, code := w.agentmesh("serve", "--quiet")
				if code != 2 || !strings.Contains(errOut, "agentmesh audit verify") {
					t.Errorf("serve on tampered state: exit %d, want 2 naming `agentmesh audit verify`:\n%s", code, errOut)
				}
				if s, stop, err := w.serve(); err == nil {
					text, isErr := s.call(t, "filesystem_write", map[string]any{"path": "/data/after.txt", "content": "x"})
					stop()
					t.Errorf("serve started on tampered state and answered a call (isError %v): %s", isErr, text)
				}
				if _, err := os.Stat(filepath.Join(w.dir, "data/after.txt")); err == nil {
					t.Error("a call wrote a file on tampered state")
				}
				if !bytes.Equal(w.checkpointNote(), cpBefore) {
					t.Error("something new was signed on tampered state")
				}
				if !bytes.Equal(readFile(t, witness), witBefore) {
					t.Error("the witness moved on tampered state")
				}
			}
		})
	}
}

func derefSeq(p *int64) any {
	if p == nil {
		return "no seq"
	}
	return *p
}

func edKey() (ed25519.PublicKey, ed25519.PrivateKey, error) { return ed25519.GenerateKey(rand.Reader) }

// TestTamperUnderRunningServe: the stored tree is rewritten while serve
// runs; the next call is refused (its write not made) and nothing new is
// signed, although serve holds the genuine tree in memory.
func TestTamperUnderRunningServe(t *testing.T) {
	w := newWorkspace(t)
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s.calls(t, 12, 0)
	cp := w.checkpointNote()
	e := w.entry(5)
	e.Reason = "nothing to see here"
	w.rewrite(5, e)
	w.rehash()
	text, isErr := s.call(t, "filesystem_write", map[string]any{"path": "/data/after.txt", "content": "x"})
	if !isErr || !strings.Contains(text, "agentmesh audit verify") {
		t.Fatalf("call after tampering: isError %v, %q; want a refusal naming `agentmesh audit verify`", isErr, text)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "data/after.txt")); err == nil {
		t.Fatal("the refused write happened")
	}
	if text, isErr := s.call(t, "filesystem_read", map[string]any{"path": "/data/notes.txt"}); !isErr {
		t.Fatalf("a later read was answered: %q", text)
	}
	if !bytes.Equal(w.checkpointNote(), cp) {
		t.Fatal("a checkpoint was signed over the rewritten tree")
	}
}

// TestUnwritableDatabase: with the database and its WAL made immutable
// mid-run, a write is refused and not made, and a POST to a loopback API
// is refused before it is sent: nothing happens unlogged.
func TestUnwritableDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chattr +i needs root; skipped")
	}
	var hits atomic.Int64
	api := newCountingServer(t, &hits)
	w := newWorkspace(t)
	w.write("agentmesh.yaml", integrityConfig+`  api:
    endpoints:
      - {url: "`+api+`/*", methods: [GET, POST], allow_private: true}
scopes:
  - {resources: ["filesystem:/data/*"], actions: [read, list, write], ttl_minutes: 15}
  - {resources: ["api:`+api+`/*"], actions: [call], ttl_minutes: 15}
`)
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if text, isErr := s.call(t, "api_call", map[string]any{"url": api + "/hook", "method": "POST", "body": "{}"}); isErr || hits.Load() != 1 {
		t.Fatalf("POST before: isError %v (%s), %d requests", isErr, text, hits.Load())
	}
	if out, err := exec.Command("chattr", "+i", w.db(), w.db()+"-wal").CombinedOutput(); err != nil {
		t.Skipf("chattr +i is not supported here (%v: %s); skipped", err, out)
	}
	defer exec.Command("chattr", "-i", w.db(), w.db()+"-wal").Run()
	text, isErr := s.call(t, "filesystem_write", map[string]any{"path": "/data/unlogged.txt", "content": "x"})
	if !isErr {
		t.Fatalf("filesystem_write answered %q with the database unwritable", text)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "data/unlogged.txt")); err == nil {
		t.Fatal("the file was written although its intent could not be logged")
	}
	text, isErr = s.call(t, "api_call", map[string]any{"url": api + "/hook", "method": "POST", "body": "{}"})
	if !isErr || hits.Load() != 1 {
		t.Fatalf("POST with the database unwritable: isError %v (%s), the server saw %d requests, want 1 (the earlier one)", isErr, text, hits.Load())
	}
	t.Logf("refusal: %s", text)
}

// TestNoFalseAlarmsBesideWriters: four serve processes keep calling while
// full verifies, incremental verifies and status run in a loop: not one
// of at least 210 checks reports a problem, and the log verifies at the
// end.
func TestNoFalseAlarmsBesideWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 4 serve processes for a while")
	}
	w := newWorkspace(t)
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.call(t, "filesystem_read", map[string]any{"path": "/data/notes.txt"})
	stop()
	if _, errOut, code := w.agentmesh("audit", "verify"); code != 0 {
		t.Fatal(errOut)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	for p := 0; p < 4; p++ {
		s, stop, err := w.serve()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			defer stop()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				tool, args := "filesystem_read", map[string]any{"path": "/data/notes.txt"}
				if i%3 == 1 {
					tool, args = "filesystem_write", map[string]any{"path": fmt.Sprintf("/data/w%d-%d.txt", p, i), "content": "x"}
				}
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = tool, args
				res, err := s.c.CallTool(s.ctx, req)
				if err != nil || res.IsError {
					t.Errorf("writer %d call %d (%s): %v %+v", p, i, tool, err, res)
					return
				}
				calls.Add(1)
				time.Sleep(2 * time.Millisecond) // a busy server, not a benchmark
			}
		}(p)
	}
	checks := 0
	for round := 0; round < 70; round++ {
		for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", "--incremental"}, {"status"}} {
			out, errOut, code := w.agentmesh(args...)
			checks++
			if code != 0 {
				t.Errorf("check %d, agentmesh %s beside 4 writers: exit %d\n%s%s", checks, strings.Join(args, " "), code, out, errOut)
			}
		}
		if t.Failed() {
			break
		}
	}
	close(done)
	wg.Wait()
	if _, errOut, code := w.agentmesh("audit", "verify"); code != 0 {
		t.Fatalf("after the writers stopped: %s", errOut)
	}
	t.Logf("%d checks beside 4 writers that made %d calls, no false alarm", checks, calls.Load())
	if calls.Load() < 100 {
		t.Fatalf("the writers made only %d calls: the checks did not run beside writes", calls.Load())
	}
}

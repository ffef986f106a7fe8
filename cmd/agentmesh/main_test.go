package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/trust"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"agentmesh":        func() { os.Exit(run(os.Args[1:], ui.System())) },
		"fixture-upstream": fixtureUpstream,
	})
}

// TestScripts runs the end-to-end scripts in testdata/*.txtar against the
// real binary (see testscript). Each script gets its own HOME and
// XDG_CONFIG_HOME so nothing touches the real user's files.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, ".home")
			env.Setenv("HOME", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("NO_COLOR", "1")
			return os.MkdirAll(home, 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"jsonfield":    cmdJSONField,
			"filemode":     cmdFileMode,
			"audit-append": cmdAuditAppend,
			"audit-tamper": cmdAuditTamper,
			"trust-event":  cmdTrustEvent,
			"mcp-script":   cmdMCPScript,
		},
	})
}

// cmdJSONField checks a value in a JSON document:
//
//	jsonfield FILE PATH WANT
//
// FILE is a file or "stdout"; PATH is dot-separated (numbers index arrays);
// WANT is compared with the value's JSON text without quotes for strings.
func cmdJSONField(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonfield FILE PATH WANT")
	}
	var data string
	if args[0] == "stdout" {
		data = ts.ReadFile("stdout")
	} else {
		data = ts.ReadFile(args[0])
	}
	var v any
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	for _, key := range strings.Split(args[1], ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[key]
		case []any:
			var i int
			if _, err := fmt.Sscanf(key, "%d", &i); err != nil || i >= len(node) {
				ts.Fatalf("%s: bad index %q", args[1], key)
			}
			v = node[i]
		default:
			ts.Fatalf("%s: %q is not inside an object or array", args[1], key)
		}
	}
	got := fmt.Sprint(v)
	if b, err := json.Marshal(v); err == nil && !isString(v) {
		got = string(b)
	}
	if (got == args[2]) == neg {
		ts.Fatalf("jsonfield %s = %s, want %s%s", args[1], got, map[bool]string{true: "not ", false: ""}[neg], args[2])
	}
}

func isString(v any) bool { _, ok := v.(string); return ok }

// cmdFileMode checks a file's permission bits: filemode FILE 0600
func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filemode FILE MODE")
	}
	st, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := fmt.Sprintf("%04o", st.Mode().Perm())
	if (got == args[1]) == neg {
		ts.Fatalf("%s has mode %s, want %s", args[0], got, args[1])
	}
}

// cmdAuditAppend appends N tool-call entries through the library, as the
// serve pipeline would:
//
//	audit-append STATEDIR N TOOL RESULT
func cmdAuditAppend(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 4 {
		ts.Fatalf("usage: audit-append STATEDIR N TOOL RESULT")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ctx := context.Background()
	id, db, l := openScriptLog(ts, args[0])
	defer db.Close()
	defer l.Close()
	for i := 0; i < n; i++ {
		score := 800
		_, err := l.Append(ctx, audit.Entry{
			Agent: id.DID(), Action: audit.ActionToolInvocation, Tool: args[2],
			Params: json.RawMessage(fmt.Sprintf(`{"path":"/data/users.json","i":%d}`, i)),
			Result: audit.Result(args[3]), TrustScore: &score,
		}, nil)
		ts.Check(err)
	}
}

// cmdAuditTamper edits the audit log behind agentmesh's back (no sqlite3
// binary needed):
//
//	audit-tamper STATEDIR flip SEQ     change one byte of entry SEQ
//	audit-tamper STATEDIR delete SEQ   delete entry SEQ
//	audit-tamper STATEDIR column SEQ   change entry SEQ's indexed tool column
//	audit-tamper STATEDIR checkpoint N change the checkpoint's tree size to N
func cmdAuditTamper(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: audit-tamper STATEDIR flip|delete|column SEQ")
	}
	db, err := sql.Open("sqlite", filepath.Join(ts.MkAbs(args[0]), state.DatabaseFile))
	ts.Check(err)
	defer db.Close()
	seq, err := strconv.Atoi(args[2])
	ts.Check(err)
	switch args[1] {
	case "flip":
		var raw []byte
		ts.Check(db.QueryRow(`SELECT entry FROM audit_entries WHERE seq = ?`, seq).Scan(&raw))
		i := strings.Index(string(raw), `"agent":"did:`) + len(`"agent":"did:`)
		raw[i] ^= 0x01
		_, err = db.Exec(`UPDATE audit_entries SET entry = ? WHERE seq = ?`, raw, seq)
	case "delete":
		_, err = db.Exec(`DELETE FROM audit_entries WHERE seq = ?`, seq)
	case "column":
		_, err = db.Exec(`UPDATE audit_entries SET tool = 'tampered' WHERE seq = ?`, seq)
	case "checkpoint":
		// Claim a different tree size in the signed checkpoint (SEQ is
		// the size to claim).
		var note []byte
		ts.Check(db.QueryRow(`SELECT note FROM audit_checkpoint`).Scan(&note))
		lines := strings.SplitN(string(note), "\n", 3)
		lines[1] = strconv.Itoa(seq)
		_, err = db.Exec(`UPDATE audit_checkpoint SET note = ?`, []byte(strings.Join(lines, "\n")))
	default:
		ts.Fatalf("unknown tampering %q", args[1])
	}
	ts.Check(err)
}

// cmdTrustEvent records N governed calls with a trust event, through the
// audit log and trust store as the serve pipeline does:
//
//	trust-event STATEDIR N KIND [SEVERITY]
//
// KIND is allowed, redacted, withheld, mistake, attack, policy_block, rate_limited,
// credential_failure or neutral.
func cmdTrustEvent(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 3 || len(args) > 4 {
		ts.Fatalf("usage: trust-event STATEDIR N KIND [SEVERITY]")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	ev := trust.Event{Kind: trust.Kind(args[2])}
	if len(args) == 4 {
		ev.Severity = args[3]
	}
	result := audit.ResultBlocked
	switch ev.Kind {
	case trust.Allowed, trust.Neutral:
		result = audit.ResultAllowed
	case trust.Redacted:
		result = audit.ResultRedacted
	}
	ctx := context.Background()
	id, db, l := openScriptLog(ts, args[0])
	defer db.Close()
	defer l.Close()
	cfg := config.Default()
	store := &trust.Store{DB: db, Model: trust.FromConfig(cfg.Trust)}
	for i := 0; i < n; i++ {
		_, err := l.Append(ctx, audit.Entry{Agent: id.DID(), Action: audit.ActionToolInvocation, Tool: "filesystem_read",
			Params: json.RawMessage(`{"path":"/data/users.json"}`), Result: result, Reason: string(ev.Kind)}, store.Hook(ev))
		ts.Check(err)
	}
}

// openScriptLog opens a state directory's audit log for appending, as
// serve does, with the script's witness directory.
func openScriptLog(ts *testscript.TestScript, stateDir string) (*identity.Identity, *state.DB, *auditlog.Log) {
	d, err := state.Open(ts.MkAbs(stateDir))
	ts.Check(err)
	id, err := identity.Load(d)
	ts.Check(err)
	db, err := d.OpenDB(context.Background(), state.SyncFull)
	ts.Check(err)
	l, err := auditlog.Open(context.Background(), db, id, auditlog.Options{WitnessDir: auditlog.WitnessDir(filepath.Join(ts.Getenv("XDG_CONFIG_HOME"), "agentmesh"))})
	ts.Check(err)
	return id, db, l
}

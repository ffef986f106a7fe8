package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startWitness runs `agentmesh witness serve` on a loopback port for the
// log whose verifier key is logKey, and returns its URL and verifier key.
func startWitness(t *testing.T, w *workspace, logKey string) (url, key string) {
	t.Helper()
	dir := t.TempDir()
	out, errOut, code := w.agentmesh("witness", "key", "--dir", dir, "--name", "witness.test/w1")
	if code != 0 {
		t.Fatal(errOut)
	}
	key = strings.TrimSpace(out)
	exe, _ := exec.LookPath("agentmesh")
	cmd := exec.Command(exe, "witness", "serve", "--http", "127.0.0.1:0", "--dir", dir, "--log", logKey)
	cmd.Env = w.env()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	re := regexp.MustCompile(`serving on (http://\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stderr)
			return m[1], key
		}
	}
	t.Fatal("the witness did not start")
	return "", ""
}

type statusWitness struct {
	Audit struct {
		Checkpoint *struct {
			Size int64 `json:"size"`
		} `json:"checkpoint"`
		Witnesses []struct {
			State  string `json:"state"`
			Size   int64  `json:"cosigned_size"`
			Detail string `json:"detail"`
		} `json:"witnesses"`
	} `json:"audit"`
	Critical []string `json:"critical"`
}

func (w *workspace) status() (statusWitness, int) {
	out, _, code := w.agentmesh("status", "--output", "json")
	var s statusWitness
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		w.t.Fatalf("status: %v\n%s", err, out)
	}
	return s, code
}

// waitWitness polls status until the external witness's recorded state
// satisfies ok.
func (w *workspace) waitWitness(ok func(statusWitness) bool) statusWitness {
	w.t.Helper()
	var s statusWitness
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if s, _ = w.status(); len(s.Audit.Witnesses) == 1 && ok(s) {
			return s
		}
	}
	w.t.Fatalf("the external witness never got there: %+v", s)
	return s
}

// TestExternalWitness: a log submits its checkpoints to another agentmesh
// process serving C2SP tlog-witness; the witness cosigns them; after a
// rollback of the whole host (database and local witness restored from an
// old copy) and new calls, the witness refuses the forked checkpoints,
// status says so and `audit verify --witness-key` fails naming the fork.
func TestExternalWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve and witness processes")
	}
	w := newWorkspace(t)
	if _, errOut, code := w.agentmesh("identity", "create"); code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ := w.agentmesh("identity", "show", "--output", "json")
	var id struct {
		VerifierKeys []string `json:"verifier_keys"`
	}
	if err := json.Unmarshal([]byte(out), &id); err != nil || len(id.VerifierKeys) == 0 {
		t.Fatalf("identity show: %v\n%s", err, out)
	}
	url, key := startWitness(t, w, id.VerifierKeys[0])
	w.write("agentmesh.yaml", integrityConfig+"audit:\n  witnesses:\n    - {url: \""+url+"\", key: \""+key+"\"}\n")

	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 8, 0)
	stop()
	st := w.waitWitness(func(s statusWitness) bool {
		return s.Audit.Witnesses[0].State == "cosigned" && s.Audit.Witnesses[0].Size == s.Audit.Checkpoint.Size
	})
	if _, errOut, code := w.agentmesh("audit", "verify", "--witness-key", key); code != 0 {
		t.Fatalf("verify --witness-key after cosigning: %s", errOut)
	}
	old := t.TempDir()
	copyTree(t, w.dir, old)
	s, stop, err = w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 8, 8)
	stop()
	cosigned := w.waitWitness(func(s statusWitness) bool {
		return s.Audit.Witnesses[0].Size == s.Audit.Checkpoint.Size && s.Audit.Witnesses[0].Size > st.Audit.Witnesses[0].Size
	}).Audit.Witnesses[0].Size

	// The whole host is rolled back: the state directory and the local
	// witness, consistently. Local checks cannot see it.
	for _, d := range []string{"state", "home"} {
		os.RemoveAll(filepath.Join(w.dir, d))
		copyTree(t, filepath.Join(old, d), filepath.Join(w.dir, d))
	}
	s, stop, err = w.serve()
	if err != nil {
		t.Fatalf("serve after a consistent rollback of the whole host: %v", err)
	}
	s.calls(t, 24, 100) // grows past what the witness cosigned: a fork
	stop()
	st = w.waitWitness(func(s statusWitness) bool { return s.Audit.Witnesses[0].State == "refused" })
	if ws := st.Audit.Witnesses[0]; ws.Size >= cosigned || !strings.Contains(ws.Detail, "fork") {
		t.Errorf("the refusal: %+v (the witness had cosigned %d)", ws, cosigned)
	}
	if _, code := w.status(); code != 1 || !strings.Contains(strings.Join(st.Critical, "\n"), "refused this log's checkpoints") {
		t.Errorf("status exit %d, critical %q; want exit 1 naming the witness's refusal", code, st.Critical)
	}
	_, errOut, code := w.agentmesh("audit", "verify", "--witness-key", key)
	if code != 1 || !strings.Contains(errOut, "fork") {
		t.Errorf("verify --witness-key after the fork: exit %d\n%s", code, errOut)
	}
}

// TestAuditorChecksProof: an auditor with nothing but a proof file and the
// log's verifier key (on a machine with no agentmesh state) checks an
// entry's inclusion; an edited proof fails.
func TestAuditorChecksProof(t *testing.T) {
	w := newWorkspace(t)
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 6, 0)
	stop()
	proof, errOut, code := w.agentmesh("audit", "prove", "3")
	if code != 0 {
		t.Fatal(errOut)
	}
	out, _, _ := w.agentmesh("identity", "show", "--output", "json")
	var id struct {
		VerifierKeys []string `json:"verifier_keys"`
	}
	json.Unmarshal([]byte(out), &id)
	if len(id.VerifierKeys) != 1 {
		t.Fatalf("identity show: %s", out)
	}
	auditor := &workspace{t: t, dir: t.TempDir()} // no configuration, no state
	os.MkdirAll(filepath.Join(auditor.dir, "home/.config"), 0o700)
	auditor.write("p.json", proof)
	run := func(args ...string) (string, string, int) {
		exe, _ := exec.LookPath("agentmesh")
		cmd := exec.Command(exe, args...)
		cmd.Env, cmd.Dir = auditor.env(), auditor.dir
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return o.String(), e.String(), code
	}
	if out, errOut, code := run("audit", "verify", "--proof", "p.json", "--key", id.VerifierKeys[0]); code != 0 || !strings.Contains(out, "entry 3 is included") {
		t.Fatalf("auditor's check: exit %d\n%s%s", code, out, errOut)
	}
	var p map[string]any
	json.Unmarshal([]byte(proof), &p)
	p["entry"] = strings.Replace(p["entry"].(string), "filesystem_", "filesystem-", 1)
	edited, _ := json.Marshal(p)
	auditor.write("edited.json", string(edited))
	if out, errOut, code := run("audit", "verify", "--proof", "edited.json", "--key", id.VerifierKeys[0]); code != 1 || !strings.Contains(errOut, "proof invalid") {
		t.Fatalf("an edited proof: exit %d\n%s%s", code, out, errOut)
	}
	// Another log's key does not verify it.
	other := newWorkspace(t)
	other.agentmesh("identity", "create")
	out, _, _ = other.agentmesh("identity", "show", "--output", "json")
	json.Unmarshal([]byte(out), &id)
	if _, errOut, code := run("audit", "verify", "--proof", "p.json", "--key", id.VerifierKeys[0]); code != 1 || !strings.Contains(errOut, "unknown key") {
		t.Fatalf("another log's key: exit %d\n%s", code, errOut)
	}
}

// TestServeOnABusyPort: the port is taken; serve fails before opening
// anything: no "serving" line, no new audit entry.
func TestServeOnABusyPort(t *testing.T) {
	w := newWorkspace(t)
	if _, errOut, code := w.agentmesh("identity", "create"); code != 0 {
		t.Fatal(errOut)
	}
	before := sizeOf(t, w)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, errOut, code := w.agentmesh("serve", "--http", ln.Addr().String())
	if code != 2 || strings.Contains(errOut, "serving") || !strings.Contains(errOut, "address already in use") {
		t.Fatalf("serve on a busy port: exit %d\n%s", code, errOut)
	}
	if after := sizeOf(t, w); after != before {
		t.Fatalf("a failed start wrote %d audit entries", after-before)
	}
}

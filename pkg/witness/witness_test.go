package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

const origin = "agentmesh/did:agentmesh:srv/0011223344556677"

// testLog is a log of n entries with its signing key.
type testLog struct {
	t      *testing.T
	tree   *audit.MemoryTree
	signer note.Signer
	vkey   string
}

func newTestLog(t *testing.T, n int, tag string) *testLog {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return newTestLogWithKey(t, n, tag, priv)
}

func newTestLogWithKey(t *testing.T, n int, tag string, priv ed25519.PrivateKey) *testLog {
	s, err := audit.NewSigner(origin, priv)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := audit.VerifierKey(origin, priv.Public().(ed25519.PublicKey))
	l := &testLog{t: t, tree: &audit.MemoryTree{}, signer: s, vkey: vkey}
	l.grow(n, tag)
	return l
}

func (l *testLog) grow(n int, tag string) {
	for i := 0; i < n; i++ {
		l.tree.Append([]byte(fmt.Sprintf("%s entry %d", tag, l.tree.Size())))
	}
}

// checkpoint signs the tree at size n.
func (l *testLog) checkpoint(n int64) []byte {
	root, err := l.tree.Root(n)
	if err != nil {
		l.t.Fatal(err)
	}
	b, err := audit.SignCheckpoint(audit.Checkpoint{Origin: origin, Size: n, Root: root}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

func (l *testLog) proof(m, n int64) tlog.TreeProof {
	p, err := l.tree.ConsistencyProof(m, n)
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

type fixture struct {
	dir    string
	signer *Signer
	srv    *httptest.Server
	client *Client
}

func newFixture(t *testing.T, logKeys ...string) *fixture {
	dir := t.TempDir()
	signer, err := LoadOrCreateKey(filepath.Join(dir, "witness.key"), "witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, signer: signer}
	f.start(t, logKeys...)
	return f
}

func (f *fixture) start(t *testing.T, logKeys ...string) {
	s, err := NewServer(f.dir, f.signer, logKeys)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(s.Handler())
	t.Cleanup(f.srv.Close)
	v, err := NewVerifier(f.signer.VKey)
	if err != nil {
		t.Fatal(err)
	}
	f.client = &Client{URL: f.srv.URL, Verifier: v}
}

func (f *fixture) add(old int64, proof tlog.TreeProof, cp []byte) (int, string) {
	body := (&AddCheckpoint{OldSize: old, Proof: proof, Checkpoint: cp}).Marshal()
	resp, err := http.Post(f.srv.URL+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestAddCheckpoint walks the C2SP tlog-witness answers one by one.
func TestAddCheckpoint(t *testing.T) {
	l := newTestLog(t, 40, "a")
	f := newFixture(t, l.vkey)
	ctx := context.Background()

	cosig, err := f.client.AddCheckpoint(ctx, 0, nil, l.checkpoint(10))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(cosig, []byte("— witness.test/w1 ")) || bytes.Count(cosig, []byte("\n")) != 1 {
		t.Fatalf("cosignature lines = %q", cosig)
	}
	// The cosignature is a C2SP cosignature/v1 over the checkpoint.
	signed := append(l.checkpoint(10), cosig...)
	if _, err := Cosigned(signed, f.client.Verifier); err != nil {
		t.Fatal(err)
	}
	// A stale old size: 409 with the size it holds.
	_, err = f.client.AddCheckpoint(ctx, 0, nil, l.checkpoint(20))
	var conflict *Conflict
	if !errors.As(err, &conflict) || conflict.Size != 10 {
		t.Fatalf("stale old size: %v", err)
	}
	// The right old size and a valid proof: cosigned.
	if _, err := f.client.AddCheckpoint(ctx, 10, l.proof(10, 20), l.checkpoint(20)); err != nil {
		t.Fatal(err)
	}
	// The same checkpoint again: cosigned again.
	if _, err := f.client.AddCheckpoint(ctx, 20, nil, l.checkpoint(20)); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		old    int64
		proof  tlog.TreeProof
		cp     []byte
		status int
		body   string
	}{
		{"unknown origin", 20, nil, signOther(t, "other/log", 21), http.StatusNotFound, "unknown log origin"},
		{"signed by a key the witness does not trust", 20, l.proof(20, 30), newTestLog(t, 30, "a").checkpoint(30), http.StatusForbidden, "no valid signature"},
		{"old size above the checkpoint's", 31, nil, l.checkpoint(30), http.StatusBadRequest, "larger than"},
		{"a proof that does not verify", 20, l.proof(19, 30), l.checkpoint(30), http.StatusUnprocessableEntity, "does not show tree size 30"},
		{"a proof from the empty tree", 0, l.proof(10, 30), l.checkpoint(30), http.StatusConflict, "20"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.add(c.old, c.proof, c.cp)
			if status != c.status || !strings.Contains(body, c.body) {
				t.Fatalf("got %d %q, want %d containing %q", status, body, c.status, c.body)
			}
		})
	}
	status, body := f.add(20, nil, []byte("not a checkpoint"))
	if status != http.StatusNotFound && status != http.StatusBadRequest {
		t.Fatalf("garbage checkpoint: %d %s", status, body)
	}
	if status, body := f.add(0, nil, nil); status != http.StatusBadRequest {
		t.Fatalf("empty request: %d %s", status, body)
	}
	resp, _ := http.Get(f.srv.URL + "/add-checkpoint")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET add-checkpoint: %d", resp.StatusCode)
	}
}

func signOther(t *testing.T, o string, n int64) []byte {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := audit.NewSigner(o, priv)
	b, err := audit.SignCheckpoint(audit.Checkpoint{Origin: o, Size: n, Root: audit.EmptyRoot}, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForkRefused: a log that rewrote history (same key: the attacker
// controls the log's host) gets no cosignature, at the same size (409) or
// beyond it (422), and the witness keeps the requests as evidence; it
// remembers across a restart.
func TestForkRefused(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	honest := newTestLogWithKey(t, 30, "a", priv)
	f := newFixture(t, honest.vkey)
	ctx := context.Background()
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, honest.checkpoint(30)); err != nil {
		t.Fatal(err)
	}
	// Rolled back to 20 and regrown differently, signed with the same key.
	fork := newTestLogWithKey(t, 0, "a", priv)
	for i := 0; i < 20; i++ {
		fork.tree.Append([]byte(fmt.Sprintf("a entry %d", i)))
	}
	fork.grow(20, "b")
	var refused *Refused
	_, err := f.client.AddCheckpoint(ctx, 30, nil, fork.checkpoint(30))
	if !errors.As(err, &refused) || refused.Status != http.StatusConflict || !refused.Fork() {
		t.Fatalf("same size, another root: %v", err)
	}
	_, err = f.client.AddCheckpoint(ctx, 30, fork.proof(30, 40), fork.checkpoint(40))
	if !errors.As(err, &refused) || refused.Status != http.StatusUnprocessableEntity {
		t.Fatalf("an extension of the fork: %v", err)
	}
	evidence, _ := os.ReadDir(filepath.Join(f.dir, "evidence"))
	if len(evidence) != 2 {
		t.Fatalf("%d evidence files, want 2", len(evidence))
	}
	// Restarted, it still holds 30 of the honest log.
	f.srv.Close()
	f.start(t, honest.vkey)
	_, err = f.client.AddCheckpoint(ctx, 0, nil, honest.checkpoint(30))
	var conflict *Conflict
	if !errors.As(err, &conflict) || conflict.Size != 30 {
		t.Fatalf("after a restart: %v", err)
	}
	honest.grow(5, "a")
	if _, err := f.client.AddCheckpoint(ctx, 30, honest.proof(30, 35), honest.checkpoint(35)); err != nil {
		t.Fatal(err)
	}
	latest, err := f.client.Latest(ctx, origin)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(latest, note.VerifierList(f.client.Verifier))
	if err != nil || !strings.HasPrefix(n.Text, origin+"\n35\n") {
		t.Fatalf("latest = %q, %v", latest, err)
	}
}

// TestConcurrentSubmissionsNeverRollBack: racing requests for two sizes
// from the same old size; whichever wins, the stored size never goes
// back (C2SP tlog-witness: check and persist atomically).
func TestConcurrentSubmissionsNeverRollBack(t *testing.T) {
	l := newTestLog(t, 200, "a")
	f := newFixture(t, l.vkey)
	ctx := context.Background()
	if _, err := f.client.AddCheckpoint(ctx, 0, nil, l.checkpoint(10)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ok := make([]int64, 0)
	var mu sync.Mutex
	for n := int64(11); n <= 200; n++ {
		wg.Add(1)
		go func(n int64) {
			defer wg.Done()
			if _, err := f.client.AddCheckpoint(ctx, 10, l.proof(10, n), l.checkpoint(n)); err == nil {
				mu.Lock()
				ok = append(ok, n)
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	if len(ok) != 1 {
		t.Fatalf("%d submissions from old size 10 were cosigned (%v), want exactly 1", len(ok), ok)
	}
	_, err := f.client.AddCheckpoint(ctx, 0, nil, l.checkpoint(200))
	var conflict *Conflict
	if !errors.As(err, &conflict) || conflict.Size != ok[0] {
		t.Fatalf("the witness holds %v, want %d", err, ok[0])
	}
}

func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); err == nil {
		t.Fatal("a second witness could take the same directory")
	}
	unlock()
	unlock, err = Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}

func TestKeys(t *testing.T) {
	if _, _, err := GenerateKey("bad name"); err == nil {
		t.Fatal("a name with a space was accepted")
	}
	skey, vkey, err := GenerateKey("witness.test/k")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigner(skey)
	if err != nil || s.VKey != vkey {
		t.Fatalf("ParseSigner: %v, %q vs %q", err, s.VKey, vkey)
	}
	if _, err := NewVerifier("witness.test/k+00000000+AAAA"); err == nil {
		t.Fatal("a malformed verifier key was accepted")
	}
	// The key file is refused when others can read it.
	dir := t.TempDir()
	p := filepath.Join(dir, "witness.key")
	if _, err := LoadOrCreateKey(p, "witness.test/k"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreateKey(p, "witness.test/k"); err == nil {
		t.Fatal("a world-readable witness key was used")
	}
}

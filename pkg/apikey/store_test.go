package apikey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time for a store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// env is one "process": its own database handle, audit log and store.
type env struct {
	dir   *state.Dir
	db    *state.DB
	log   *auditlog.Log
	store *Store
	clock *clock
}

// newEnv opens the state directory root (creating it and its identity the
// first time) as a process of its own.
func newEnv(t testing.TB, root string, cached bool) *env {
	t.Helper()
	ctx := context.Background()
	d, err := state.Create(root)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Load(d)
	if err != nil {
		if id, err = identity.Create(d, identity.CreateOptions{Name: "srv", Sponsor: "a@b.com"}); err != nil {
			t.Fatal(err)
		}
	}
	db, err := d.OpenDB(ctx, state.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	l, err := auditlog.Open(ctx, db, id, auditlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: t0}
	s := &Store{DB: db, Log: l, Agent: id.DID(), Operator: "op@host", Now: c.now}
	if cached {
		s.Cache = NewCache()
	}
	t.Cleanup(func() { s.Close(); l.Close(); db.Close() })
	return &env{dir: d, db: db, log: l, store: s, clock: c}
}

func mustCreate(t testing.TB, s *Store, name string, scopes []string, expires time.Time) (string, Key) {
	t.Helper()
	key, k, err := s.Create(context.Background(), name, scopes, expires)
	if err != nil {
		t.Fatal(err)
	}
	return key, k
}

func TestCreateAndLookup(t *testing.T) {
	for _, cached := range []bool{false, true} {
		e := newEnv(t, filepath.Join(t.TempDir(), "state"), cached)
		key, k := mustCreate(t, e.store, "ci-bot", []string{"mcp:read", "mcp:write", "mcp:read"}, time.Time{})
		if id, err := Parse(key); err != nil || id != k.ID || len(key) != KeyLen {
			t.Fatalf("key %q: Parse = %q, %v; Key %+v", key, id, err, k)
		}
		if k.Caller != "ci-bot" || k.Status != Active || strings.Join(k.Scopes, " ") != "mcp:read mcp:write" {
			t.Fatalf("Key = %+v", k)
		}
		for i := 0; i < 3; i++ {
			c, err := e.store.Lookup(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			want := caller.ForAPIKey("ci-bot")
			if c.ID != want.ID || c.Kind != caller.APIKey || c.Name != "ci-bot" || !c.HasScope("mcp:write") || len(c.Scopes) != 2 {
				t.Fatalf("Lookup = %+v", c)
			}
			c.Scopes[0] = "changed" // the caller's copy, not the cache's
		}
	}
}

// TestLookupRefuses: every way a token can fail, each with its error.
func TestLookupRefuses(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), true)
	ctx := context.Background()
	good, k := mustCreate(t, e.store, "svc", nil, time.Time{})
	revoked, _ := mustCreate(t, e.store, "gone", nil, time.Time{})
	if _, err := e.store.Revoke(ctx, "gone", "left the team"); err != nil {
		t.Fatal(err)
	}
	expiring, _ := mustCreate(t, e.store, "temp", nil, t0.Add(time.Hour))
	other, _, _ := Generate()
	flip := []byte(good)
	flip[len(flip)-1] = map[bool]byte{true: 'b', false: 'a'}[flip[len(flip)-1] == 'a']

	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"valid", good, t0, nil},
		{"empty", "", t0, ErrMalformed},
		{"no prefix", strings.TrimPrefix(good, Prefix), t0, ErrMalformed},
		{"other prefix", "sk-" + good[3:], t0, ErrMalformed},
		{"short", good[:len(good)-1], t0, ErrMalformed},
		{"long", good + "a", t0, ErrMalformed},
		{"upper case", strings.ToUpper(good), t0, ErrMalformed},
		{"bearer prefix kept", "Bearer " + good, t0, ErrMalformed},
		{"unknown id", other, t0, ErrUnknown},
		{"right id, wrong secret", string(flip), t0, ErrUnknown},
		{"right id, another key's secret", Prefix + k.ID + other[len(Prefix)+IDLen:], t0, ErrUnknown},
		{"revoked", revoked, t0, ErrRevoked},
		{"not yet expired", expiring, t0.Add(time.Hour - time.Microsecond), nil},
		{"expired", expiring, t0.Add(time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.t = tt.at
			c, err := e.store.Lookup(ctx, tt.token)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Lookup = %v, %v; want %v", c, err, tt.want)
			}
			if err != nil && c != nil {
				t.Fatalf("a refusal returned a caller: %+v", c)
			}
			if err != nil && strings.Contains(err.Error(), tt.token[min(len(tt.token), len(Prefix)+IDLen+1):]) && len(tt.token) > len(Prefix)+IDLen+1 {
				t.Fatalf("the error repeats the secret: %v", err)
			}
		})
	}
}

// TestRevocationByAnotherProcess: a key revoked through another database
// handle (`agentmesh keys revoke` while serve runs) is refused on the very
// next Lookup, whether or not it was cached.
func TestRevocationByAnotherProcess(t *testing.T) {
	for _, cached := range []bool{true, false} {
		root := filepath.Join(t.TempDir(), "state")
		serve := newEnv(t, root, cached)
		ctx := context.Background()
		key, k := mustCreate(t, serve.store, "ci", []string{"s"}, time.Time{})
		for i := 0; i < 3; i++ {
			if _, err := serve.store.Lookup(ctx, key); err != nil {
				t.Fatal(err)
			}
			serve.store.lookup.writes.Wait() // the last_used update commits too
		}
		if cached {
			before := serve.store.Cache.misses.Load()
			if _, err := serve.store.Lookup(ctx, key); err != nil {
				t.Fatal(err)
			}
			if serve.store.Cache.misses.Load() != before {
				t.Fatal("setup: the key was not served from the cache")
			}
		}
		cli := newEnv(t, root, false)
		if _, err := cli.store.Revoke(ctx, k.ID, "leaked in a CI log"); err != nil {
			t.Fatal(err)
		}
		if c, err := serve.store.Lookup(ctx, key); !errors.Is(err, ErrRevoked) {
			t.Fatalf("cached=%v: Lookup after a revocation elsewhere = %v, %v", cached, c, err)
		}
	}
}

// TestStoredFormIsAHash: the database (main file, WAL and index) holds the
// key's SHA-256, never the key or its secret; the audit entries name the
// key's id only.
func TestStoredFormIsAHash(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), false)
	ctx := context.Background()
	var keys []string
	for _, name := range []string{"a", "b", "c"} {
		key, k := mustCreate(t, e.store, name, []string{"x"}, t0.Add(24*time.Hour))
		keys = append(keys, key)
		var stored []byte
		if err := e.db.Reader().QueryRow(`SELECT hash FROM api_keys WHERE id = ?`, k.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256([]byte(key)); !bytes.Equal(stored, sum[:]) {
			t.Fatalf("stored %x, want the SHA-256 of the key %x", stored, sum)
		}
		if _, err := e.store.Lookup(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Revoke(ctx, "b", "test"); err != nil {
		t.Fatal(err)
	}
	e.store.lookup.writes.Wait()
	check := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(e.db.Path + "*")
		var wal bool
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wal = wal || strings.HasSuffix(f, "-wal") && len(b) > 0
			for _, key := range keys {
				secret := key[len(Prefix)+IDLen+1:]
				if bytes.Contains(b, []byte(secret)) || bytes.Contains(bytes.ToUpper(b), []byte(strings.ToUpper(secret))) {
					t.Fatalf("%s: %s holds a key's secret", when, filepath.Base(f))
				}
			}
		}
		if when == "open" && !wal {
			t.Fatal("setup: the WAL is empty, so it was not examined")
		}
	}
	check("open")
	entries, err := e.log.List(ctx, auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	var created, revoked int
	for _, s := range entries {
		switch s.Entry.Action {
		case audit.ActionAPIKeyCreated:
			created++
		case audit.ActionAPIKeyRevoked:
			revoked++
		}
	}
	if created != 3 || revoked != 1 {
		t.Fatalf("audit: %d created, %d revoked entries", created, revoked)
	}
	// Closed: the last connection checkpoints the WAL into the main file.
	e.store.Close()
	e.log.Close()
	e.db.Close()
	check("closed")
}

func TestRevokeTargets(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), false)
	ctx := context.Background()
	k1, a := mustCreate(t, e.store, "ci", nil, time.Time{})
	k2, b := mustCreate(t, e.store, "ci", nil, time.Time{})
	k3, c := mustCreate(t, e.store, "web", nil, time.Time{})

	if _, err := e.store.Revoke(ctx, "ci", " "); err == nil || !strings.Contains(err.Error(), "needs a reason") {
		t.Fatalf("no reason: %v", err)
	}
	var nf *NotFoundError
	if _, err := e.store.Revoke(ctx, "nobody", "r"); !errors.As(err, &nf) || !strings.Contains(err.Error(), "keys list") {
		t.Fatalf("unknown target: %v", err)
	}
	// By caller name: all its keys, in one transaction, one entry each.
	got, err := e.store.Revoke(ctx, "key:ci", "rotated")
	if err != nil || len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || got[0].Status != Revoked {
		t.Fatalf("revoke by caller = %+v, %v", got, err)
	}
	var already *AlreadyRevokedError
	if _, err := e.store.Revoke(ctx, "ci", "again"); !errors.As(err, &already) || len(already.Keys) != 2 {
		t.Fatalf("revoking again: %v", err)
	}
	// By id.
	if got, err := e.store.Revoke(ctx, c.ID, "moved"); err != nil || len(got) != 1 || got[0].Caller != "web" {
		t.Fatalf("revoke by id = %+v, %v", got, err)
	}
	for _, key := range []string{k1, k2, k3} {
		if _, err := e.store.Lookup(ctx, key); !errors.Is(err, ErrRevoked) {
			t.Fatalf("after revocation: %v", err)
		}
	}
	entries, err := e.log.List(ctx, auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	var log []string
	for _, s := range entries {
		if s.Entry.Action != audit.ActionAPIKeyRevoked {
			continue
		}
		var d struct {
			KeyID  string `json:"key_id"`
			Caller string `json:"key_caller"`
			By     string `json:"by"`
		}
		if err := json.Unmarshal(s.Entry.Details, &d); err != nil {
			t.Fatal(err)
		}
		log = append(log, d.KeyID+" "+d.Caller+" "+d.By+" "+s.Entry.Reason)
	}
	want := []string{a.ID + " key:ci op@host rotated", b.ID + " key:ci op@host rotated", c.ID + " key:web op@host moved"}
	if strings.Join(log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("revocation entries:\n%s\nwant\n%s", strings.Join(log, "\n"), strings.Join(want, "\n"))
	}
}

func TestCreateValidates(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), false)
	_, k := mustCreate(t, e.store, "first", nil, time.Time{})
	tests := []struct {
		name, caller string
		scopes       []string
		expires      time.Time
		want         string
	}{
		{"empty name", "", nil, time.Time{}, "empty"},
		{"long name", strings.Repeat("a", 65), nil, time.Time{}, "at most 64"},
		{"space", "ci bot", nil, time.Time{}, "letters, digits"},
		{"colon", "key:ci", nil, time.Time{}, "letters, digits"},
		{"slash", "a/b", nil, time.Time{}, "letters, digits"},
		{"non-ascii", "bötó", nil, time.Time{}, "letters, digits"},
		{"an existing id", k.ID, nil, time.Time{}, "id of an existing key"},
		{"scope with space", "ok", []string{"a b"}, time.Time{}, "RFC 6749"},
		{"empty scope", "ok", []string{""}, time.Time{}, "empty scope"},
		{"scope with quote", "ok", []string{`a"`}, time.Time{}, "RFC 6749"},
		{"expired already", "ok", nil, t0, "not in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _, err := e.store.Create(context.Background(), tt.caller, tt.scopes, tt.expires)
			if err == nil || !strings.Contains(err.Error(), tt.want) || key != "" {
				t.Fatalf("Create = %q, %v; want an error with %q", key, err, tt.want)
			}
		})
	}
	for _, name := range []string{"a", "ci-bot_2.prod", "svc@team", strings.Repeat("Z", 64)} {
		if err := ValidateCallerName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	keys, err := e.store.List(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("refused creations left keys: %+v, %v", keys, err)
	}
}

func TestListStatusesAndNoSecrets(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), false)
	ctx := context.Background()
	k1, _ := mustCreate(t, e.store, "active", []string{"a"}, time.Time{})
	e.clock.t = t0.Add(time.Second)
	k2, _ := mustCreate(t, e.store, "revoked", nil, time.Time{})
	e.clock.t = t0.Add(2 * time.Second)
	k3, _ := mustCreate(t, e.store, "expired", nil, t0.Add(time.Hour))
	if _, err := e.store.Revoke(ctx, "revoked", "r"); err != nil {
		t.Fatal(err)
	}
	e.clock.t = t0.Add(2 * time.Hour)
	keys, err := e.store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.Caller+":"+string(k.Status))
	}
	if strings.Join(got, " ") != "active:active revoked:revoked expired:expired" {
		t.Fatalf("statuses: %s", got)
	}
	if !keys[0].Created.Equal(t0) || !keys[2].Expires.Equal(t0.Add(time.Hour)) || keys[1].RevokedReason != "r" {
		t.Fatalf("times: %+v", keys)
	}
	b, _ := json.Marshal(keys)
	for _, key := range []string{k1, k2, k3} {
		sum := sha256.Sum256([]byte(key))
		if bytes.Contains(b, []byte(key[len(Prefix)+IDLen+1:])) || bytes.Contains(b, []byte(hexLower(sum[:]))) {
			t.Fatalf("the listing shows a key or its hash: %s", b)
		}
	}
}

func hexLower(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// TestLastUsedAtMostOncePerMinute: a busy caller costs one write a minute.
func TestLastUsedAtMostOncePerMinute(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), true)
	ctx := context.Background()
	key, k := mustCreate(t, e.store, "busy", nil, time.Time{})
	lastUsed := func() time.Time {
		t.Helper()
		e.store.lookup.writes.Wait()
		keys, err := e.store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return keys[0].LastUsed
	}
	if !lastUsed().IsZero() {
		t.Fatal("a new key was used")
	}
	for i, step := range []struct {
		at   time.Duration
		want time.Duration
	}{{0, 0}, {time.Second, 0}, {59 * time.Second, 0}, {61 * time.Second, 61 * time.Second}, {100 * time.Second, 61 * time.Second}, {3 * time.Minute, 3 * time.Minute}} {
		e.clock.t = t0.Add(step.at)
		for j := 0; j < 5; j++ {
			if _, err := e.store.Lookup(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if got := lastUsed(); !got.Equal(t0.Add(step.want)) {
			t.Fatalf("step %d (at +%v): last_used %v, want +%v", i, step.at, got, step.want)
		}
	}
	// Another process's recent write counts too.
	other := newEnv(t, filepath.Dir(e.db.Path), false)
	other.clock.t = t0.Add(3*time.Minute + 30*time.Second)
	if _, err := other.store.Lookup(ctx, key); err != nil {
		t.Fatal(err)
	}
	other.store.lookup.writes.Wait()
	if got := lastUsed(); !got.Equal(t0.Add(3 * time.Minute)) {
		t.Fatalf("a second process wrote last_used within the minute: %v (key %s)", got, k.ID)
	}
}

// TestCacheHitsWhileNothingCommits: repeated Lookups read the database
// once per commit, not once per call.
func TestCacheHitsWhileNothingCommits(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "state"), true)
	ctx := context.Background()
	key, _ := mustCreate(t, e.store, "svc", nil, time.Time{})
	for i := 0; i < 100; i++ {
		if _, err := e.store.Lookup(ctx, key); err != nil {
			t.Fatal(err)
		}
		e.store.lookup.writes.Wait()
	}
	// The first read, and one after the last_used write committed.
	if m := e.store.Cache.misses.Load(); m > 2 {
		t.Fatalf("%d of 100 Lookups read the database", m)
	}
}

func TestParseExpires(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"90d", t0.AddDate(0, 0, 90), ""},
		{"36h", t0.Add(36 * time.Hour), ""},
		{"2027-01-31T00:00:00Z", time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"2027-01-31T02:00:00+02:00", time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), ""},
		{"0d", time.Time{}, "whole number of days"},
		{"-3d", time.Time{}, "whole number of days"},
		{"1.5d", time.Time{}, "whole number of days"},
		{"-1h", time.Time{}, "positive"},
		{"2020-01-01T00:00:00Z", time.Time{}, "not in the future"},
		{"tomorrow", time.Time{}, "want days (90d)"},
		{"2027-01-31", time.Time{}, "RFC 3339"},
	}
	for _, tt := range tests {
		got, err := ParseExpires(tt.in, t0)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("%q: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestConcurrentLookupsAndRevocation: lookups from many goroutines share
// the cache safely, and none made after Revoke returned (in another
// process) succeeds.
func TestConcurrentLookupsAndRevocation(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	serve := newEnv(t, root, true)
	cli := newEnv(t, root, false)
	ctx := context.Background()
	key, _ := mustCreate(t, serve.store, "svc", nil, time.Time{})
	revoked := make(chan struct{})
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-revoked:
					_, err := serve.store.Lookup(ctx, key)
					if !errors.Is(err, ErrRevoked) {
						errs <- errors.Join(errors.New("a lookup after the revocation"), err)
						return
					}
					errs <- nil
					return
				default:
				}
				if _, err := serve.store.Lookup(ctx, key); err != nil && !errors.Is(err, ErrRevoked) {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := cli.store.Revoke(ctx, "svc", "test"); err != nil {
		t.Fatal(err)
	}
	close(revoked)
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

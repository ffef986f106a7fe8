package pgapikey

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

func open(t testing.TB, url string, now *time.Time) *Store {
	t.Helper()
	db, err := pgstate.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{DB: db, Operator: "alice@host", Now: func() time.Time { return *now }}
	t.Cleanup(func() { s.Close(); db.Close() })
	return s
}

func create(t testing.TB, s *Store, name string, scopes []string, expires time.Time) (string, apikey.Key, audit.Entry) {
	t.Helper()
	var key string
	var k apikey.Key
	e := audit.Entry{Action: audit.ActionAPIKeyCreated}
	err := s.DB.Write(context.Background(), func(tx pgx.Tx) (err error) {
		key, k, err = s.Create(context.Background(), tx, &e, name, scopes, expires)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return key, k, e
}

func revoke(s *Store, target, reason string) ([]apikey.Key, audit.Entry, []audit.Entry, error) {
	var keys []apikey.Key
	var more []audit.Entry
	e := audit.Entry{Action: audit.ActionAPIKeyRevoked}
	err := s.DB.Write(context.Background(), func(tx pgx.Tx) (err error) {
		keys, more, err = s.Revoke(context.Background(), tx, &e, target, reason)
		return err
	})
	return keys, e, more, err
}

func TestLookup(t *testing.T) {
	now := t0
	url := pgtest.URL(t)
	s, other := open(t, url, &now), open(t, url, &now)
	ctx := context.Background()
	good, k, e := create(t, s, "ci", []string{"mcp:read", "mcp:read", "mcp:write"}, time.Time{})
	if want, _ := apikey.CreatedDetails(k, "alice@host"); string(e.Details) != string(want) {
		t.Fatalf("entry details %s, want %s (as the SQLite store records)", e.Details, want)
	}
	short, _, _ := create(t, s, "nightly", nil, t0.Add(time.Hour))
	revoked, rk, _ := create(t, s, "old", nil, time.Time{})
	if _, _, _, err := revoke(s, rk.ID, "leaked in a log"); err != nil {
		t.Fatal(err)
	}
	wrongSecret := good[:len(good)-1] + map[bool]string{true: "b", false: "a"}[good[len(good)-1] == 'a']
	unknown, _, _ := apikey.Generate()

	tests := []struct {
		name, token string
		at          time.Time
		want        error // nil: accepted
	}{
		{"valid", good, t0, nil},
		{"valid, on another replica", good, t0, nil},
		{"malformed", "Bearer xyz", t0, apikey.ErrMalformed},
		{"unknown id", unknown, t0, apikey.ErrUnknown},
		{"known id, wrong secret", wrongSecret, t0, apikey.ErrUnknown},
		{"revoked", revoked, t0, apikey.ErrRevoked},
		{"before expiry", short, t0.Add(time.Hour - time.Microsecond), nil},
		{"at expiry", short, t0.Add(time.Hour), apikey.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			c, err := other.Lookup(ctx, tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Lookup = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
	now = t0
	c, err := other.Lookup(ctx, good)
	if err != nil || c.ID != "key:ci" || !reflect.DeepEqual(c.Scopes, []string{"mcp:read", "mcp:write"}) {
		t.Fatalf("Lookup = %+v, %v; want key:ci with [mcp:read mcp:write]", c, err)
	}
	other.Close() // last_used written
	keys, err := s.List(ctx)
	if err != nil || len(keys) != 3 || keys[0].LastUsed.IsZero() || keys[0].Status != apikey.Active || keys[2].Status != apikey.Revoked {
		t.Fatalf("List = %+v, %v", keys, err)
	}
}

// TestRevokeIsSeenByEveryReplica: a key revoked through one replica is
// refused by another on its very next Lookup; revoking a caller revokes
// all its keys, one entry each, and bumps each key's change version.
func TestRevokeIsSeenByEveryReplica(t *testing.T) {
	now := t0
	url := pgtest.URL(t)
	a, b := open(t, url, &now), open(t, url, &now)
	ctx := context.Background()
	k1, key1, _ := create(t, a, "svc", []string{"mcp:read"}, time.Time{})
	k2, key2, _ := create(t, a, "svc", []string{"mcp:read"}, time.Time{})
	for _, k := range []string{k1, k2} {
		if _, err := b.Lookup(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	keys, e, more, err := revoke(a, "key:svc", "rotated")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || len(more) != 1 || e.Reason != "rotated" || more[0].Reason != "rotated" {
		t.Fatalf("Revoke = %d keys, %d more entries, reason %q", len(keys), len(more), e.Reason)
	}
	if want, _ := apikey.RevokedDetails(key1, "alice@host"); string(e.Details) != string(want) {
		t.Fatalf("entry details %s, want %s", e.Details, want)
	}
	for _, k := range []string{k1, k2} {
		if _, err := b.Lookup(ctx, k); !errors.Is(err, apikey.ErrRevoked) {
			t.Fatalf("Lookup on the other replica after revocation = %v, want ErrRevoked", err)
		}
	}
	var versions int
	a.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM state_versions WHERE kind = 'api_key' AND key IN ($1, $2)`, key1.ID, key2.ID).Scan(&versions)
	if versions != 2 {
		t.Fatalf("%d change versions bumped, want 2", versions)
	}
	var already *apikey.AlreadyRevokedError
	if _, _, _, err := revoke(a, key1.ID, "again"); !errors.As(err, &already) {
		t.Fatalf("revoking again = %v, want AlreadyRevokedError", err)
	}
	var notFound *apikey.NotFoundError
	if _, _, _, err := revoke(a, "nobody", "x"); !errors.As(err, &notFound) {
		t.Fatalf("revoking an unknown target = %v, want NotFoundError", err)
	}
	if _, _, _, err := revoke(a, key1.ID, " "); err == nil {
		t.Fatal("a revocation without a reason was accepted")
	}
}

func TestCreateRefuses(t *testing.T) {
	now := t0
	s := open(t, pgtest.URL(t), &now)
	_, k, _ := create(t, s, "ci", nil, time.Time{})
	tests := []struct {
		name, caller string
		scopes       []string
		expires      time.Time
	}{
		{"a caller name that is a key id", k.ID, nil, time.Time{}},
		{"a bad caller name", "a b", nil, time.Time{}},
		{"a bad scope", "ok", []string{"has space"}, time.Time{}},
		{"an expiry in the past", "ok", nil, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := audit.Entry{}
			err := s.DB.Write(context.Background(), func(tx pgx.Tx) error {
				_, _, err := s.Create(context.Background(), tx, &e, tt.caller, tt.scopes, tt.expires)
				return err
			})
			if err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

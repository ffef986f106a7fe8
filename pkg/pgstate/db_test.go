package pgstate_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// Replicas starting together against a new database migrate it once.
func TestOpenConcurrentMigratesOnce(t *testing.T) {
	u := pgtest.URL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	dbs := make([]*pgstate.DB, 5)
	errs := make([]error, 5)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = pgstate.Open(ctx, u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	var rows, versions int
	if err := dbs[0].Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != len(pgstate.Migrations) || versions != len(pgstate.Migrations) {
		t.Errorf("schema_migrations has %d rows (%d versions), want %d", rows, versions, len(pgstate.Migrations))
	}
	var trees int
	if err := dbs[0].Pool.QueryRow(ctx, `SELECT count(*) FROM audit_tree_state`).Scan(&trees); err != nil {
		t.Fatal(err)
	}
	if trees != 1 {
		t.Errorf("audit_tree_state has %d rows, want 1", trees)
	}
	v, err := dbs[4].SchemaVersion(ctx)
	if err != nil || v != pgstate.Migrations[len(pgstate.Migrations)-1].Version {
		t.Errorf("SchemaVersion = %d, %v", v, err)
	}
}

// A database migrated by a newer agentmesh is refused, not written.
func TestOpenRefusesNewerSchema(t *testing.T) {
	u := pgtest.URL(t)
	ctx := context.Background()
	db, err := pgstate.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO schema_migrations(version, name) VALUES (1000, 'future')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := pgstate.Open(ctx, u); err == nil {
		t.Fatal("Open accepted a schema newer than it knows")
	}
}

// The password never appears in messages.
func TestOpenUnreachableHidesPassword(t *testing.T) {
	_, err := pgstate.Open(context.Background(), "postgres://u:secretpw@127.0.0.1:1/db?connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable database succeeded")
	}
	if s := err.Error(); strings.Contains(s, "secretpw") {
		t.Errorf("error shows the password: %s", s)
	}
}

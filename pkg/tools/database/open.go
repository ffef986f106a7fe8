package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
)

// connector opens connections with a private sqlite.Driver, so that the
// connection hook installing the authorizer applies to these connections
// only, and no hook registered by another package on the shared "sqlite"
// driver runs on them.
type connector struct {
	driver *sqlite.Driver
	dsn    string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.driver.Open(c.dsn)
}

func (c connector) Driver() driver.Driver { return c.driver }

// dsn is a SQLite URI for the file. Read-only databases are opened with
// mode=ro (SQLite opens the file O_RDONLY: every write fails with
// SQLITE_READONLY, and a missing file is not created) and query_only=1.
// Every database gets trusted_schema=0 (functions with side effects cannot
// run from views and triggers of a hostile file) and defensive mode
// (no writable_schema, no direct page writes).
func dsn(hostPath string, readOnly bool) string {
	p := filepath.ToSlash(hostPath)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // file:///C:/x on Windows
	}
	q := url.Values{}
	q.Set("mode", "rw")
	if readOnly {
		q.Set("mode", "ro")
		q.Set("_query_only", "1")
	}
	q.Set("_defensive", "1")
	q.Add("_pragma", "trusted_schema(0)")
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// layers are the independent protections; all are on in production.
// Tests turn some off to show that each of the others holds on its own.
type layers struct {
	noLexical    bool // multiple statements and statement kinds
	noAuthorizer bool
}

// open returns the pool for one database and checks a first connection.
func open(ctx context.Context, d DB, l layers) (*sql.DB, error) {
	drv := &sqlite.Driver{}
	drv.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, _ string) error {
		return prepareConn(conn, d.ReadOnly, l)
	})
	db := sql.OpenDB(connector{driver: drv, dsn: dsn(d.HostPath, d.ReadOnly)})
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// prepareConn checks that a new connection is what the DSN asked for and
// installs the authorizer; a connection failing either is never used.
func prepareConn(conn sqlite.ExecQuerierContext, readOnly bool, l layers) error {
	if readOnly {
		ro, ok := conn.(interface{ IsReadOnly(string) (bool, error) })
		if !ok {
			return errors.New("the SQLite driver cannot report whether a database is read-only")
		}
		if yes, err := ro.IsReadOnly("main"); err != nil || !yes {
			return fmt.Errorf("the database was opened writable although it is configured read-only (%v)", err)
		}
		if v, err := pragmaValue(conn, "query_only"); err != nil || v != "1" {
			return fmt.Errorf("PRAGMA query_only is %q, want 1 (%v)", v, err)
		}
	}
	if l.noAuthorizer {
		return nil
	}
	reg, ok := conn.(sqlite.AuthorizerRegisterer)
	if !ok {
		return errors.New("the SQLite driver does not support an authorizer")
	}
	return reg.RegisterAuthorizer(authorizer(readOnly, nil))
}

func pragmaValue(conn sqlite.ExecQuerierContext, name string) (string, error) {
	rows, err := conn.QueryContext(context.Background(), "PRAGMA "+name, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	v := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(v); err != nil {
		if err == io.EOF {
			return "", errors.New("no value")
		}
		return "", err
	}
	return fmt.Sprint(v[0]), nil
}

// installRecorder replaces the connection's authorizer with one of the same
// policy that records its denials into rec.
func installRecorder(conn *sql.Conn, readOnly bool, rec *recorder) error {
	return conn.Raw(func(dc any) error {
		reg, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("the SQLite driver does not support an authorizer")
		}
		return reg.RegisterAuthorizer(authorizer(readOnly, rec))
	})
}

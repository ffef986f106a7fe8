// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database named by AGENTMESH_TEST_DATABASE_URL (started by
// scripts/pg-test-env, which scripts/test runs), dropped when the test
// ends. Without that variable the tests that need PostgreSQL skip.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the test database's URL.
const EnvURL = "AGENTMESH_TEST_DATABASE_URL"

// URL returns the URL of a new, empty schema (as search_path) in the test
// database, dropped at the end of the test, or skips the test when
// AGENTMESH_TEST_DATABASE_URL is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skip(EnvURL + " is not set: no PostgreSQL to test against (scripts/pg-test-env starts one; scripts/test does it for you)")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to the test database (%s): %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, base); err == nil {
			conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	return WithParam(t, base, "search_path", schema)
}

// WithParam returns u with the query parameter k set to v.
func WithParam(t testing.TB, u, k, v string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%s must be a postgres:// URL: %v", EnvURL, err)
	}
	q := p.Query()
	q.Set(k, v)
	p.RawQuery = q.Encode()
	return p.String()
}

// Proxy forwards TCP connections to the database, so that a test can make
// the database unreachable (Stop) without stopping the shared server.
type Proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	paused bool
}

// NewProxy starts a proxy to the host of dbURL and returns it with dbURL
// rewritten to go through it. It stops at the end of the test.
func NewProxy(t testing.TB, dbURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln}
	go p.serve(target)
	t.Cleanup(p.Stop)
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *Proxy) serve(target string) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		paused := p.paused
		p.mu.Unlock()
		if paused {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// Pause cuts every forwarded connection and refuses new ones until Resume:
// the database is down, as far as the clients can tell, and comes back at
// the same address.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Resume forwards connections again after Pause.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
}

// Stop closes the listener and every forwarded connection: from then on
// the database is unreachable through the proxy.
func (p *Proxy) Stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

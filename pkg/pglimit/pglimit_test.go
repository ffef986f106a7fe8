package pglimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/ratelimit/ratelimittest"
)

var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

type (
	Check  = ratelimit.Check
	Key    = ratelimit.Key
	Window = ratelimit.Window
)

func open(t testing.TB, url string) *pgstate.DB {
	t.Helper()
	db, err := pgstate.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestCounterSuite: the PostgreSQL counter agrees with the in-memory and
// SQLite ones call by call (ratelimittest).
func TestCounterSuite(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Counter { return New(open(t, pgtest.URL(t))) })
}

func TestRecordedBeyondLimitKeepsOnlyNewest(t *testing.T) {
	db := open(t, pgtest.URL(t))
	c := New(db)
	ctx := context.Background()
	chk := Check{Key: Key{Policy: "p", Rule: "warn", Agent: "a"}, Window: Window{Limit: 3, Per: time.Hour, Unit: "hour"}}
	for i := range 10 {
		if err := c.Admit(ctx, t0.Add(time.Duration(i)*time.Minute), []Check{chk}, func([]int) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	var oldest int64
	db.Pool.QueryRow(ctx, `SELECT count(*), min(ts) FROM rate_limit_calls`).Scan(&rows, &oldest)
	if rows != 3 || oldest != t0.Add(7*time.Minute).UnixNano() {
		t.Fatalf("rows = %d oldest = %v, want the 3 newest (from +7m)", rows, time.Unix(0, oldest).UTC())
	}
	if used, _ := c.Usage(ctx, t0.Add(67*time.Minute-time.Second), []Check{chk}); used[0] != 3 {
		t.Fatalf("used at +66m59s = %d, want 3", used[0])
	}
	if used, _ := c.Usage(ctx, t0.Add(67*time.Minute), []Check{chk}); used[0] != 2 {
		t.Fatalf("used at +67m = %d, want 2", used[0])
	}
}

func TestSweepsDeadKeys(t *testing.T) {
	db := open(t, pgtest.URL(t))
	c := New(db)
	ratelimittest.AdmitIfRoom(t, c, t0, Check{Key: Key{Policy: "p", Rule: "r", Agent: "gone"}, Window: Window{Limit: 5, Per: time.Hour, Unit: "hour"}})
	ratelimittest.AdmitIfRoom(t, c, t0.Add(25*time.Hour), Check{Key: Key{Policy: "p", Rule: "r", Agent: "here"}, Window: Window{Limit: 5, Per: time.Hour, Unit: "hour"}})
	var agents []string
	rows, _ := db.Pool.Query(context.Background(), `SELECT agent FROM rate_limit_calls`)
	agents, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || fmt.Sprint(agents) != "[here]" {
		t.Fatalf("rows left = %v (%v), want only the live key", agents, err)
	}
}

func TestAdmitTxRollsBackWithCaller(t *testing.T) {
	db := open(t, pgtest.URL(t))
	c := New(db)
	ctx := context.Background()
	chk := Check{Key: Key{Policy: "p", Rule: "r", Agent: "a"}, Window: Window{Limit: 5, Per: time.Hour, Unit: "hour"}}
	err := db.Write(ctx, func(tx pgx.Tx) error {
		if err := c.AdmitTx(ctx, tx, t0, []Check{chk}, func([]int) bool { return true }); err != nil {
			return err
		}
		return errors.New("audit append failed")
	})
	if err == nil {
		t.Fatal("Write returned nil")
	}
	if used, _ := c.Usage(ctx, t0, []Check{chk}); used[0] != 0 {
		t.Fatalf("used = %d after the caller's transaction rolled back, want 0", used[0])
	}
}

// TestReplicasAdmitExactlyTheLimit is the fleet's promise: three replicas
// (own pools) with eight goroutines each race for one "100/hour" window
// through the hour; exactly 100 calls get through, the refused ones do
// not count, and the window slides an hour after the first call.
func TestReplicasAdmitExactlyTheLimit(t *testing.T) {
	url := pgtest.URL(t)
	var replicas []*Counter
	for range 3 {
		replicas = append(replicas, New(open(t, url)))
	}
	chk := Check{Key: Key{Policy: "rate-limit-api-calls", Rule: "#0", Agent: "key:ci"}, Window: Window{Limit: 100, Per: time.Hour, Unit: "hour"}}
	var admitted, refused atomic.Int64
	var firstAt atomic.Int64 // the earliest admitted call, in ns after t0
	firstAt.Store(int64(time.Hour))
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Add(1)
		go func(c *Counter) {
			defer wg.Done()
			for i := range 10 {
				// Every call is inside the hour, spread over its first minute.
				at := time.Duration(g*10+i) * 100 * time.Millisecond
				if ratelimittest.AdmitIfRoom(t, c, t0.Add(at), chk) {
					admitted.Add(1)
					for {
						f := firstAt.Load()
						if int64(at) >= f || firstAt.CompareAndSwap(f, int64(at)) {
							break
						}
					}
				} else {
					refused.Add(1)
				}
			}
		}(replicas[g%3])
	}
	wg.Wait()
	if admitted.Load() != 100 || refused.Load() != 140 {
		t.Fatalf("admitted %d, refused %d of 240; want exactly 100 admitted", admitted.Load(), refused.Load())
	}
	used, err := replicas[0].Usage(context.Background(), t0.Add(59*time.Minute), []Check{chk})
	if err != nil || used[0] != 100 {
		t.Fatalf("Usage at +59m = %v, %v; want [100]: refused calls must not count", used, err)
	}
	// Calls were admitted at various times within the first minute; an
	// hour after the earliest one, exactly one slot has opened (or more, if
	// several were admitted at that instant).
	opens := t0.Add(time.Hour + time.Duration(firstAt.Load()))
	if ratelimittest.AdmitIfRoom(t, replicas[1], opens.Add(-time.Nanosecond), chk) {
		t.Fatal("a call just before the first admitted call left the window was admitted")
	}
	if !ratelimittest.AdmitIfRoom(t, replicas[2], opens, chk) {
		t.Fatal("a call an hour after the first admitted call was refused: the window did not slide")
	}
}

// TestOppositeOrderDoesNotDeadlock: Admits over the same two keys, listed
// in opposite orders, run concurrently on two replicas without deadlock.
func TestOppositeOrderDoesNotDeadlock(t *testing.T) {
	url := pgtest.URL(t)
	c1, c2 := New(open(t, url)), New(open(t, url))
	w := Window{Limit: 1000, Per: time.Hour, Unit: "hour"}
	a := Check{Key: Key{Policy: "p", Rule: "r", Agent: "a"}, Window: w}
	b := Check{Key: Key{Policy: "p", Rule: "r", Agent: "b"}, Window: w}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, checks := c1, []Check{a, b}
			if g%2 == 1 {
				c, checks = c2, []Check{b, a}
			}
			for range 20 {
				if err := c.Admit(ctx, t0, checks, func([]int) bool { return true }); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	used, err := c1.Usage(ctx, t0, []Check{a, b})
	if err != nil || fmt.Sprint(used) != "[160 160]" {
		t.Fatalf("Usage = %v, %v; want [160 160]", used, err)
	}
}

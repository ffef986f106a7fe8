package state

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestChangeTokenFollowsEveryCommit: the token is stable while nothing is
// written (reads included), and differs after every commit, through WAL
// restarts (auto-checkpoints every 1000 pages) and for commits made by
// another process.
func TestChangeTokenFollowsEveryCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDB(context.Background(), SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tok, ok := db.ChangeToken()
	if !ok {
		t.Fatal("no change token from an open WAL database")
	}
	var n int
	db.Reader().QueryRow(`SELECT count(*) FROM meta`).Scan(&n)
	if again, _ := db.ChangeToken(); again != tok {
		t.Fatal("the token changed without a write")
	}
	seen := map[ChangeToken]int{tok: -1}
	for i := 0; i < 2500; i++ {
		err := db.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT OR REPLACE INTO meta VALUES ('k', ?)`, fmt.Sprint(i))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		next, ok := db.ChangeToken()
		if !ok {
			t.Fatalf("write %d: token unreadable", i)
		}
		if next == tok {
			t.Fatalf("write %d: the token did not change", i)
		}
		if j, dup := seen[next]; dup {
			t.Fatalf("write %d: the token repeats the one after write %d", i, j)
		}
		seen[next] = i
		tok = next
	}
	// Another process commits one write.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+dir, "WORKER_ID=x", "WORKER_WRITES=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("worker: %v\n%s", err, out)
	}
	if after, _ := db.ChangeToken(); after == tok {
		t.Fatal("a commit by another process left the token unchanged")
	}
}

// TestWriteTrackedSoloNamesItsOwnState: a state cached under a Solo
// commit's token is never served for a database state it does not
// describe, while another connection writes the same row concurrently:
// whenever the database's token equals a Solo token, the row holds what
// that commit wrote. Sequential commits are nearly all Solo, or caching
// would never hit.
func TestWriteTrackedSoloNamesItsOwnState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := d.OpenDB(ctx, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	put := func(db *DB, v string) (Commit, error) {
		return db.WriteTracked(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT OR REPLACE INTO meta VALUES ('k', ?)`, v)
			return err
		})
	}
	solo := 0
	for i := 0; i < 2000; i++ {
		c, err := put(a, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if c.Solo {
			solo++
		}
	}
	if solo < 1990 {
		t.Fatalf("%d of 2000 sequential commits were Solo", solo)
	}

	b, err := d.OpenDB(ctx, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	cached := map[ChangeToken]string{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the other process
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := put(b, fmt.Sprint("other-", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	checked, soloRaced := 0, 0
	go func() { // a reader using the cache
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			t1, _ := a.ChangeToken()
			var v string
			if err := a.Reader().QueryRow(`SELECT value FROM meta WHERE key = 'k'`).Scan(&v); err != nil {
				t.Error(err)
				return
			}
			t2, _ := a.ChangeToken()
			mu.Lock()
			want, ok := cached[t1]
			mu.Unlock()
			if t1 == t2 && ok {
				checked++
				if v != want {
					t.Errorf("token %x: the row holds %q, the cache %q", t1[:24], v, want)
					return
				}
			}
		}
	}()
	for i := 0; i < 3000; i++ {
		v := fmt.Sprint("mine-", i)
		c, err := put(a, v)
		if err != nil {
			t.Fatal(err)
		}
		if c.Solo {
			soloRaced++
			mu.Lock()
			cached[c.Token] = v
			mu.Unlock()
		}
	}
	close(done)
	wg.Wait()
	t.Logf("%d of 3000 commits beside another writer were Solo; %d cache checks", soloRaced, checked)
}

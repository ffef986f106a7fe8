package state

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

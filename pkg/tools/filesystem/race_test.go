package filesystem

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// flipper runs f(i) for i = 0, 1, 2, ... until stopped.
func flipper(f func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			f(i)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// TestSymlinkSwapRace flips /data/flip between a regular file and a
// symbolic link to the canary (absolute and relative, atomically by
// rename) while filesystem_read runs at least 1000 times. No read may ever
// return the canary; both outcomes (the file, a symlink refusal) must be
// seen, or the race was not exercised.
func TestSymlinkSwapRace(t *testing.T) {
	for _, mode := range resolveModes {
		t.Run(mode.name, func(t *testing.T) {
			fx := newFixture(t)
			mode.apply(fx)
			symlinkSwapRace(t, fx)
		})
	}
}

func symlinkSwapRace(t *testing.T, fx *fixture) {
	flip := filepath.Join(fx.data, "flip")
	staging := filepath.Join(fx.data, "staging")
	mkdir(t, staging)
	const inside = "inside content"
	writeFile(t, flip, inside)
	stop := flipper(func(i int) {
		var tmp string
		switch i % 3 {
		case 0:
			tmp = filepath.Join(staging, "file")
			_ = os.WriteFile(tmp, []byte(inside), 0o644)
		case 1:
			tmp = filepath.Join(staging, "abs")
			_ = os.Symlink(fx.canaryPath, tmp)
		case 2:
			tmp = filepath.Join(staging, "rel")
			_ = os.Symlink("../outside/secret.txt", tmp)
		}
		_ = os.Rename(tmp, flip)
	})
	defer stop()

	counts := map[string]int{}
	for n := 0; n < 20000 && (n < 1000 || counts["ok"] == 0 || counts["symlink"] == 0); n++ {
		o := run(fx.read, map[string]any{"path": "/data/flip"})
		if strings.Contains(o.text(), fx.canary) {
			t.Fatalf("ESCAPE after %d reads: the canary was returned", n)
		}
		switch r := o.refusal(); {
		case o.err == nil:
			if got := o.resultText(); got != inside {
				t.Fatalf("read returned %q, want %q", got, inside)
			}
			counts["ok"]++
		case r != nil:
			counts[r.Check]++
		default:
			counts["error"]++
		}
	}
	stop()
	t.Logf("outcomes: %v", counts)
	if counts["ok"] == 0 || counts["symlink"] == 0 {
		t.Fatalf("the race was not exercised: %v", counts)
	}
	for k := range counts {
		if k != "ok" && k != "symlink" {
			t.Errorf("unexpected outcome %q (%d times)", k, counts[k])
		}
	}
}

// TestDirectorySwapRace flips /data/dir between a real directory and a
// symbolic link to the outside directory while writes and listings run: no
// file may ever appear outside, and no listing may show the outside
// directory's entries.
func TestDirectorySwapRace(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(fx.data, "dir")
	stop := flipper(func(i int) {
		_ = os.RemoveAll(dir)
		if i%2 == 0 {
			_ = os.Mkdir(dir, 0o755)
		} else {
			_ = os.Symlink(fx.outside, dir)
		}
		time.Sleep(100 * time.Microsecond) // hold each state for a moment
	})
	defer stop()
	counts := map[string]int{}
	for n := 0; n < 20000 && (n < 1000 || counts["ok"] == 0 || counts["symlink"] == 0); n++ {
		w := run(fx.write, map[string]any{"path": "/data/dir/pwned.txt", "content": "PWNED"})
		l := run(fx.list, map[string]any{"path": "/data/dir"})
		for _, o := range []outcome{w, l} {
			if strings.Contains(o.text(), "secret.txt") || strings.Contains(o.text(), fx.canary) {
				t.Fatalf("ESCAPE after %d rounds: %s", n, o.text())
			}
			var r *tools.Refusal
			switch {
			case o.err == nil:
				counts["ok"]++
			case errors.As(o.err, &r):
				counts[r.Check]++
			default:
				counts["error"]++ // not there between flips
			}
		}
	}
	stop()
	t.Logf("outcomes: %v", counts)
	entries, err := os.ReadDir(fx.outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("ESCAPE: files appeared outside the root: %v", entries)
	}
	if counts["ok"] == 0 || counts["symlink"] == 0 {
		t.Fatalf("the race was not exercised: %v", counts)
	}
}

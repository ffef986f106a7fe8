// Command auditfill fills a state directory's audit log with N tool-call
// entries through the library (group commit, 16 appenders), for benchmarks
// of whole commands on large logs:
//
//	go run ./scripts/bench/auditfill -state DIR -n 1000000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

func main() {
	dir := flag.String("state", "", "state directory (created with an identity if needed)")
	n := flag.Int64("n", 1_000_000, "entries to append")
	workers := flag.Int("workers", 16, "concurrent appenders")
	sync := flag.String("sync", "normal", "PRAGMA synchronous for filling: full or normal")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: auditfill -state DIR [-n N]")
		os.Exit(2)
	}
	if err := run(*dir, *n, *workers, *sync); err != nil {
		fmt.Fprintln(os.Stderr, "auditfill:", err)
		os.Exit(1)
	}
}

func run(dir string, n int64, workers int, syncMode string) error {
	ctx := context.Background()
	d, err := state.Create(dir)
	if err != nil {
		return err
	}
	id, err := identity.Load(d)
	if errors.Is(err, identity.ErrNoIdentity) {
		id, err = identity.Create(d, identity.CreateOptions{Name: "bench", Sponsor: "bench@example.com"})
	}
	if err != nil {
		return err
	}
	db, err := d.OpenDB(ctx, syncMode)
	if err != nil {
		return err
	}
	defer db.Close()
	// The witness lives where every command looks for it, as with serve.
	var opts auditlog.Options
	if cfgDir, err := os.UserConfigDir(); err == nil {
		opts.WitnessDir = auditlog.WitnessDir(filepath.Join(cfgDir, "agentmesh"))
	}
	l, err := auditlog.Open(ctx, db, id, opts)
	if err != nil {
		return err
	}
	defer l.Close()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	agents := []string{id.DID(), "did:agentmesh:other-a", "did:agentmesh:other-b", "did:agentmesh:other-c"}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				score := 800
				_, err := l.Append(ctx, audit.Entry{
					Agent: agents[i%int64(len(agents))], Action: audit.ActionToolInvocation, Tool: "filesystem_read",
					Params: []byte(fmt.Sprintf(`{"path":"/data/file-%d.json"}`, i)), Result: audit.ResultAllowed, TrustScore: &score,
				}, nil)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("appended %d entries in %s (%.0f/s)\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return nil
}

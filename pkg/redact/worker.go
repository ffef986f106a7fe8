package redact

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Scans run on worker goroutines that are reused for a while after they
// finish: a fresh goroutine per call spends ~15% of a small call growing its
// stack to the depth gitleaks and regexp need. A worker is started whenever
// none is idle, so a worker still busy with an abandoned (timed-out) scan
// never delays a new one.

// workerIdle is how long an idle worker waits for the next scan.
const workerIdle = 10 * time.Second

// scanTask is one bounded scan.
type scanTask struct {
	ctx  context.Context
	work func(context.Context) error
	done chan<- error // buffered: the worker never blocks on an absent caller
}

var (
	idleWorkers = make(chan scanTask) // unbuffered: a send succeeds only if a worker waits
	activeScans atomic.Int64          // scans running, including abandoned ones
)

// startScan hands t to an idle worker or starts a new one.
func startScan(t scanTask) {
	select {
	case idleWorkers <- t:
	default:
		go scanWorker(t)
	}
}

func scanWorker(t scanTask) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.done <- runScan(t)
		idle.Reset(workerIdle)
		select {
		case t = <-idleWorkers:
		case <-idle.C:
			return
		}
	}
}

// runScan runs t.work, turning a panic into ErrScanFailed.
func runScan(t scanTask) (err error) {
	activeScans.Add(1)
	defer activeScans.Add(-1)
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: detector panicked: %v", ErrScanFailed, p)
		}
	}()
	return t.work(t.ctx)
}

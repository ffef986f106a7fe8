package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// batchedLog reopens the fixture's log in the relaxed mode.
func batchedLog(t *testing.T, f *fixture, window time.Duration, onErr func(error)) *Log {
	t.Helper()
	f.log.Close()
	l, err := Open(context.Background(), f.db, f.id, Options{BatchWindow: window, OnEnqueuedError: onErr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestEnqueueCommitsWithinTheWindow(t *testing.T) {
	f := newFixture(t, t.TempDir())
	l := batchedLog(t, f, 20*time.Millisecond, nil)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if err := l.Enqueue(ctx, call(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Enqueue does not wait; the window's commit makes them visible.
	deadline := time.Now().Add(5 * time.Second)
	var got []Stored
	for time.Now().Before(deadline) {
		var err error
		if got, err = l.List(ctx, Filter{AfterSeq: -1}); err != nil {
			t.Fatal(err)
		}
		if len(got) == 30 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(got) != 30 {
		t.Fatalf("%d entries committed, want 30", len(got))
	}
	for i, s := range got {
		if s.Entry.Seq != uint64(i) || s.Entry.Tool != call(i).Tool {
			t.Fatalf("entry %d = seq %d tool %s: order not kept", i, s.Entry.Seq, s.Entry.Tool)
		}
	}
	rep, err := l.Verify(ctx, VerifyOptions{})
	if err != nil || rep.Size != 30 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

func TestCloseFlushesEnqueued(t *testing.T) {
	f := newFixture(t, t.TempDir())
	l := batchedLog(t, f, time.Hour, nil) // the window never ends by itself
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := l.Enqueue(ctx, call(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	r, err := Open(ctx, f.db, f.id, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.List(ctx, Filter{AfterSeq: -1})
	if err != nil || len(got) != 5 {
		t.Fatalf("after Close: %d entries (%v), want the 5 enqueued", len(got), err)
	}
}

// An Append (someone waiting) ends the window: it is not delayed by it.
func TestAppendIsNotDelayedByTheWindow(t *testing.T) {
	f := newFixture(t, t.TempDir())
	l := batchedLog(t, f, time.Hour, nil)
	ctx := context.Background()
	if err := l.Enqueue(ctx, call(0), nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(ctx, call(1), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append waited for the batch window")
	}
}

func TestFailedBatchedCommitRefusesLaterEnqueues(t *testing.T) {
	f := newFixture(t, t.TempDir())
	var mu sync.Mutex
	var reported []error
	l := batchedLog(t, f, 5*time.Millisecond, func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() })
	ctx := context.Background()
	if err := l.Failure(); err != nil {
		t.Fatalf("Failure before any commit failed: %v", err)
	}
	boom := errors.New("disk on fire")
	if err := l.Enqueue(ctx, call(0), func(context.Context, *sql.Tx, *audit.Entry) ([]audit.Entry, error) { return nil, boom }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = l.Enqueue(ctx, call(1), nil); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Enqueue after a lost entry = %v, want a refusal naming the failure", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !errors.Is(reported[0], boom) {
		t.Fatalf("OnEnqueuedError saw %v, want the failure once", reported)
	}
	if err := l.Failure(); !errors.Is(err, boom) {
		t.Fatalf("Failure = %v, want the failed batch's error (readiness)", err)
	}
}

// TestQueueDepthCountsUncommittedEntries: enqueued entries count until
// their commit, which an Append (someone waiting) brings forward.
func TestQueueDepthCountsUncommittedEntries(t *testing.T) {
	f := newFixture(t, t.TempDir())
	l := batchedLog(t, f, time.Hour, nil)
	ctx := context.Background()
	for i := range 3 {
		if err := l.Enqueue(ctx, call(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.QueueDepth(); n != 3 {
		t.Fatalf("QueueDepth = %d after 3 enqueued, want 3", n)
	}
	if _, err := l.Append(ctx, call(3), nil); err != nil {
		t.Fatal(err)
	}
	if n := l.QueueDepth(); n != 0 {
		t.Fatalf("QueueDepth = %d after the commit, want 0", n)
	}
}

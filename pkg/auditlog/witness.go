package auditlog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// The witness is a copy of the latest signed checkpoint kept outside the
// state directory (DESIGN.md, "Audit witness"): whoever rolls back or
// truncates the log in the state directory must also find and roll back
// this file, or every later open, `status` and `audit verify` report the
// rollback. It only ever moves forward, along a consistency proof from the
// checkpoint it holds (RFC 6962 §2.1.2); a checkpoint that does not extend
// it is a fork, reported and never written. It is written after commits,
// coalesced to at most one write per witnessInterval and at Close, never
// on the call path, so it may lag the log; only the very first checkpoint
// of a log is written before its append returns, so that a log never has
// checkpoints without a witness.
const witnessInterval = 100 * time.Millisecond

// WitnessDir is the default witness directory under a user configuration
// directory ($XDG_CONFIG_HOME/agentmesh).
func WitnessDir(userConfigDir string) string { return filepath.Join(userConfigDir, "witness") }

// witnessPath names the witness file of a log after its origin.
func witnessPath(dir, origin string) string {
	name := strings.NewReplacer("/", "_", ":", "_", "\\", "_").Replace(origin)
	return filepath.Join(dir, name+".checkpoint")
}

// WitnessPath is where this log's witness lives ("" when disabled).
func (l *Log) WitnessPath() string {
	if l.opts.WitnessDir == "" {
		return ""
	}
	return witnessPath(l.opts.WitnessDir, l.origin)
}

// witnessCopy is the local witness as read: its checkpoint, or why it
// cannot be trusted.
type witnessCopy struct {
	path string
	note []byte
	cp   audit.Checkpoint
	err  error
}

// readWitness returns the witness, or nil when it is disabled or absent.
// Read it before taking a view of the database: a witness is written
// after its commit, so it is then never ahead of the view.
func (l *Log) readWitness() *witnessCopy {
	path := l.WitnessPath()
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	w := &witnessCopy{path: path, note: b}
	if err != nil {
		w.err = fmt.Errorf("audit witness %s: %w", path, err)
		return w
	}
	w.cp, w.err = l.openNote(b, "the witness "+path)
	return w
}

type witnessWriter struct {
	l       *Log
	path    string
	onError func(error)

	mu    sync.Mutex
	size  int64
	note  []byte
	dirty bool
	timer *time.Timer
	// first: the log had no witness when opened, so its first checkpoint
	// is witnessed before the append returns, with the witness lock held
	// across the commit (see Log.commit and readWithWitness).
	first  bool
	closed bool
}

func newWitnessWriter(l *Log, missing bool) *witnessWriter {
	return &witnessWriter{l: l, path: l.WitnessPath(), onError: l.opts.OnWitnessError, first: missing}
}

// lockFirst takes the witness lock before the commit that signs a log's
// first checkpoint, so that no reader sees that checkpoint without its
// witness; it returns nil when this is not that commit.
func (w *witnessWriter) lockFirst() func() {
	w.mu.Lock()
	first := w.first
	w.mu.Unlock()
	if !first {
		return nil
	}
	unlock, err := state.LockFile(w.path + ".lock")
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(w.path), 0o700); err == nil {
			unlock, err = state.LockFile(w.path + ".lock")
		}
	}
	if err != nil {
		if w.onError != nil {
			w.onError(fmt.Errorf("audit witness: %w", err))
		}
		return func() {} // witness the first checkpoint anyway
	}
	return unlock
}

// writeFirst witnesses the first checkpoint at once (the lock is held).
func (w *witnessWriter) writeFirst(size int64, note []byte) {
	w.mu.Lock()
	w.first = false
	if size > w.size {
		w.size, w.note = size, note
	}
	w.mu.Unlock()
	if err := w.l.advanceWitness(size, note, true); err != nil && w.onError != nil {
		w.onError(err)
	}
}

// offer records a newer checkpoint and schedules a write.
func (w *witnessWriter) offer(size int64, note []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || size <= w.size {
		return
	}
	w.size, w.note, w.dirty = size, note, true
	if w.timer == nil {
		w.timer = time.AfterFunc(witnessInterval, w.flush)
	}
}

func (w *witnessWriter) flush() {
	w.mu.Lock()
	size, note, dirty := w.size, w.note, w.dirty
	w.dirty, w.timer = false, nil
	w.mu.Unlock()
	if !dirty {
		return
	}
	if err := w.l.advanceWitness(size, note, false); err != nil && w.onError != nil {
		w.onError(err)
	}
}

func (w *witnessWriter) close() {
	w.mu.Lock()
	w.closed = true
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.mu.Unlock()
	w.flush()
}

// advanceWitness moves the witness forward to the signed checkpoint note
// (of tree size size), under a lock shared by every process (held already
// when locked): only if it is newer than what the witness holds and a
// consistency proof shows it extends that.
func (l *Log) advanceWitness(size int64, note []byte, locked bool) error {
	path := l.WitnessPath()
	if !locked {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("audit witness: %w", err)
		}
		unlock, err := state.LockFile(path + ".lock")
		if err != nil {
			return fmt.Errorf("audit witness: %w", err)
		}
		defer unlock()
	}
	cur, err := l.openNote(note, "the checkpoint to witness")
	if err != nil {
		return err
	}
	if old := l.readWitness(); old != nil {
		if old.err != nil {
			return fmt.Errorf("audit witness not moved forward: %w", old.err)
		}
		switch {
		case old.cp.Size > size:
			l.witnessed(size)
			return nil // another process already wrote a newer one
		case old.cp.Size == size:
			if old.cp.Root != cur.Root {
				return forkOf(old.cp, "the witness "+path, cur, "this log")
			}
			l.witnessed(size)
			return nil
		}
		var cerr error
		err := l.read(context.Background(), func(v *view) error {
			cerr = consistent(old.cp, cur, v)
			return nil
		})
		if err != nil {
			return fmt.Errorf("audit witness not moved forward: %w", err)
		}
		if cerr != nil {
			return problemf(audit.NoSeq, audit.KindFork,
				"audit witness not moved forward: the checkpoint of tree size %d is not an extension of the witness %s (tree size %d): %v",
				size, path, old.cp.Size, cerr)
		}
	}
	if err := state.WriteFileAtomic(path, note); err != nil {
		return fmt.Errorf("audit witness: %w", err)
	}
	l.witnessed(size)
	return nil
}

// witnessed notes that the witness covers size entries.
func (l *Log) witnessed(size int64) {
	for {
		cur := l.witnessedSize.Load()
		if size <= cur || l.witnessedSize.CompareAndSwap(cur, size) {
			return
		}
	}
}

// StartWitness writes the witness from the latest signed checkpoint when
// there is none: an operator who verified a log copied from another
// machine (`audit verify --no-witness`) accepts it as the new baseline.
func (l *Log) StartWitness() (string, error) {
	path := l.WitnessPath()
	if path == "" {
		return "", errors.New("the witness is disabled (audit.witness: false)")
	}
	var note []byte
	var size int64
	err := l.read(context.Background(), func(v *view) error {
		cp, err := v.checkpoint()
		if !v.hasCP || err != nil {
			return errors.New("the log has no valid signed checkpoint to witness")
		}
		note, size = v.note, cp.Size
		return nil
	})
	if err != nil {
		return "", err
	}
	return path, l.advanceWitness(size, note, false)
}

// readWithWitness runs fn on a view of the log and the witness read just
// before it. A log with checkpoints and no witness may be one whose first
// checkpoint is being witnessed at this moment: the writer holds the
// witness lock across that commit, so the reader waits for the lock and
// reads both again before fn sees a missing witness.
func (l *Log) readWithWitness(ctx context.Context, fn func(v *view, w *witnessCopy) error) error {
	w := l.readWitness()
	settled := l.WitnessPath() == ""
	for {
		recheck := false
		err := l.read(ctx, func(v *view) error {
			if w == nil && v.hasCP && !settled {
				recheck = true
				return nil
			}
			return fn(v, w)
		})
		if !recheck {
			return err
		}
		settled = true
		path := l.WitnessPath()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			if unlock, err := state.LockFile(path + ".lock"); err == nil {
				unlock()
			}
		}
		w = l.readWitness()
	}
}

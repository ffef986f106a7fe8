package auditlog

import (
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
// this file, or `audit verify` reports the rollback. It is written after
// commits, coalesced to at most one write per witnessInterval and at
// Close, never on the call path; so it may lag the log, and verify proves
// the log is a consistent extension of it.
const witnessInterval = 100 * time.Millisecond

// WitnessDir is the default witness directory under a user configuration
// directory ($XDG_CONFIG_HOME/agentmesh).
func WitnessDir(userConfigDir string) string { return filepath.Join(userConfigDir, "witness") }

// witnessPath names the witness file of a log after its origin.
func witnessPath(dir, origin string) string {
	name := strings.NewReplacer("/", "_", ":", "_", "\\", "_").Replace(origin)
	return filepath.Join(dir, name+".checkpoint")
}

type witnessWriter struct {
	path    string
	onError func(error)

	mu      sync.Mutex
	size    int64
	note    []byte
	dirty   bool
	timer   *time.Timer
	written int64
	closed  bool
}

func newWitnessWriter(path string, onError func(error)) *witnessWriter {
	return &witnessWriter{path: path, onError: onError}
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
	if err := writeWitness(w.path, size, note); err != nil && w.onError != nil {
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

// writeWitness replaces the witness unless it already holds a larger tree:
// another process may have written a newer checkpoint, and a smaller one in
// the file would only weaken rollback detection.
func writeWitness(path string, size int64, note []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit witness: %w", err)
	}
	if old, err := os.ReadFile(path); err == nil {
		if cp, perr := parseUnverified(old); perr == nil && cp.Size > size {
			return nil
		}
	}
	if err := state.WriteFileAtomic(path, note); err != nil {
		return fmt.Errorf("audit witness: %w", err)
	}
	return nil
}

// readWitness returns the witness file's signed checkpoint, or nil when
// there is none yet.
func readWitness(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// parseUnverified reads a checkpoint body without checking signatures (only
// to compare sizes before overwriting).
func parseUnverified(signed []byte) (audit.Checkpoint, error) {
	body, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok {
		return audit.Checkpoint{}, errors.New("not a signed note")
	}
	return audit.ParseCheckpoint([]byte(body + "\n"))
}

package mcpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// ListenerRecord is what a running `serve --http` leaves in the state
// directory (listeners/PID.json, held by a lock on listeners/PID.lock for
// as long as it serves), so that `status` can tell what is being served
// right now: an unauthenticated non-loopback listener is critical.
type ListenerRecord struct {
	PID           int       `json:"pid"`
	Addr          string    `json:"addr"`
	Loopback      bool      `json:"loopback"`
	TLS           bool      `json:"tls"`
	Authenticated bool      `json:"authenticated"`
	Started       time.Time `json:"started"`
}

const listenersDir = "listeners"

// RecordListener writes rec and holds its lock until release; records of
// processes that are gone (their lock is free) are removed on the way.
func RecordListener(d *state.Dir, rec ListenerRecord) (release func(), err error) {
	dir := d.Join(listenersDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	removeStaleListeners(dir)
	// One record per listener: a process may serve more than one.
	_, port, _ := net.SplitHostPort(rec.Addr)
	base := filepath.Join(dir, strconv.Itoa(rec.PID)+"-"+port)
	unlock, err := state.LockFile(base + ".lock")
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(rec)
	if err := state.WriteFileAtomic(base+".json", b); err != nil {
		unlock()
		return nil, err
	}
	return func() {
		os.Remove(base + ".json")
		unlock()
		os.Remove(base + ".lock")
	}, nil
}

func removeStaleListeners(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		base := strings.TrimSuffix(f, ".json")
		if unlock, ok, err := state.TryLockFile(base + ".lock"); err == nil && ok {
			os.Remove(f)
			unlock()
			os.Remove(base + ".lock")
		}
	}
}

// LiveListeners are the records of `serve --http` processes still
// running on this state directory.
func LiveListeners(d *state.Dir) ([]ListenerRecord, error) {
	files, err := filepath.Glob(filepath.Join(d.Join(listenersDir), "*.json"))
	if err != nil {
		return nil, err
	}
	var out []ListenerRecord
	for _, f := range files {
		base := strings.TrimSuffix(f, ".json")
		unlock, free, err := state.TryLockFile(base + ".lock")
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil, fmt.Errorf("reading %s: %w", f, err)
			}
			continue
		}
		if free {
			unlock() // its process is gone
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue // removed as it stopped
		}
		var rec ListenerRecord
		if json.Unmarshal(b, &rec) == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

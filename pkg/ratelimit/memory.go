package ratelimit

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is a Counter held in process memory: for tests, `policy test`,
// `policy explain` and benchmarks. It forgets everything when the process
// exits.
type Memory struct {
	mu   sync.Mutex
	keys map[Key][]int64 // admitted call times, oldest first, at most Limit
	used []int
}

// NewMemory returns an empty in-memory Counter.
func NewMemory() *Memory {
	return &Memory{keys: map[Key][]int64{}}
}

// Admit implements Counter.
func (m *Memory) Admit(ctx context.Context, now time.Time, checks []Check, decide func(used []int) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.count(now, checks)
	if !decide(used) {
		return nil
	}
	ts := now.UnixNano()
	for _, c := range checks {
		times := m.keys[c.Key]
		// Keep the times sorted even if a caller's clock went backwards.
		i, _ := slices.BinarySearch(times, ts+1)
		times = slices.Insert(times, i, ts)
		if len(times) > c.Window.Limit {
			times = times[len(times)-c.Window.Limit:]
		}
		m.keys[c.Key] = times
	}
	return nil
}

// Usage implements Counter.
func (m *Memory) Usage(ctx context.Context, now time.Time, checks []Check) ([]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.count(now, checks)), nil
}

// count prunes expired times of the checked keys and returns the counts in
// a buffer reused by the next call (the caller holds m.mu).
func (m *Memory) count(now time.Time, checks []Check) []int {
	m.used = slices.Grow(m.used[:0], len(checks))[:len(checks)]
	for i, c := range checks {
		times := m.keys[c.Key]
		lo := since(now, c.Window)
		j, _ := slices.BinarySearch(times, lo+1) // first time > lo
		if j > 0 {
			times = times[j:]
			if len(times) == 0 {
				delete(m.keys, c.Key)
			} else {
				m.keys[c.Key] = times
			}
		}
		m.used[i] = min(len(times), c.Window.Limit)
	}
	return m.used
}

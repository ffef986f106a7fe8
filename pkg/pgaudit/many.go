package pgaudit

import (
	"context"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// AppendMany appends entries in their order (they get consecutive seqs
// when no other writer appends meanwhile) and waits for every commit; the
// committer takes up to Options.MaxBatch of them per transaction. It is
// for bulk copies (`agentmesh state migrate`): it returns the entries as
// committed, or the first error (entries before it may be committed).
func (s *Store) AppendMany(ctx context.Context, entries []audit.Entry) ([]audit.Entry, error) {
	if err := s.refusing(); err != nil {
		return nil, err
	}
	ps := make([]*pending, len(entries))
	s.closing.RLock()
	if s.closed {
		s.closing.RUnlock()
		return nil, ErrClosed
	}
	// One producer, in order: the committer's queue keeps it.
	for i, e := range entries {
		if e.Timestamp.IsZero() {
			e.Timestamp = s.opts.Now()
		}
		ps[i] = &pending{ctx: ctx, entry: e, done: make(chan result, 1)}
		select {
		case s.appends <- ps[i]:
		case <-ctx.Done():
			s.closing.RUnlock()
			for _, p := range ps[:i] {
				<-p.done
			}
			return nil, ctx.Err()
		}
	}
	s.closing.RUnlock()
	out := make([]audit.Entry, len(entries))
	var first error
	for i, p := range ps {
		r := <-p.done
		if r.err != nil && first == nil {
			first = r.err
		}
		out[i] = r.entry
	}
	return out, first
}

package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Hook runs inside the append's transaction, before the entry is encoded:
// the trust update of a call commits or fails together with its audit entry,
// and may fill in e (the trust score after the call). Entries it returns are
// appended right after e in the same transaction (a trust change caused by
// the call, say). An error fails this append only.
type Hook func(ctx context.Context, tx *sql.Tx, e *audit.Entry) (followUps []audit.Entry, err error)

// OnCommit registers fn to run once the transaction holding the entry
// whose Hook was given ctx has committed, before Append returns: a hook
// that derived state from the transaction (the trust state it stored) may
// then cache it under the commit's change token. fn does not run if the
// entry is rolled back or the transaction fails. It reports whether ctx is
// a hook's (outside a hook fn never runs).
func OnCommit(ctx context.Context, fn func(state.Commit)) bool {
	fns, ok := ctx.Value(onCommitKey{}).(*[]func(state.Commit))
	if ok {
		*fns = append(*fns, fn)
	}
	return ok
}

type onCommitKey struct{}

type pending struct {
	ctx   context.Context
	entry audit.Entry
	hook  Hook
	done  chan result
	// queued entries (Enqueue) have no one waiting for them.
	queued bool
}

type result struct {
	entry audit.Entry
	err   error
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log is closed")

// Append adds e (and any follow-up entries its hook returns) to the log and
// returns e with its sequence number, after the transaction holding it
// committed. Seq is assigned by the log; a zero Timestamp is set to now.
// Concurrent calls share a transaction.
func (l *Log) Append(ctx context.Context, e audit.Entry, hook Hook) (audit.Entry, error) {
	if l.signer == nil {
		return audit.Entry{}, errors.New("audit log opened read-only")
	}
	if err := l.refusing(); err != nil {
		return audit.Entry{}, err
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = l.opts.Now()
	}
	p := &pending{ctx: ctx, entry: e, hook: hook, done: make(chan result, 1)}
	// The read lock keeps Close from completing between the closed check
	// and the send, so nothing is queued that the committer will not see.
	l.closing.RLock()
	if l.closed {
		l.closing.RUnlock()
		return audit.Entry{}, ErrClosed
	}
	select {
	case l.appends <- p:
		l.closing.RUnlock()
	case <-ctx.Done():
		l.closing.RUnlock()
		return audit.Entry{}, ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the entry may
	// already be committed, and the caller must learn which.
	r := <-p.done
	return r.entry, r.err
}

// Enqueue is Append's relaxed form (Options.BatchWindow): it returns once
// e is queued, and the committer writes it with the others of its window.
// A crash loses the entries of at most one window; a failed commit loses
// its entries, is reported to Options.OnEnqueuedError, and makes every
// later Enqueue fail, so that nothing more happens unrecorded. e's
// sequence number is not known when Enqueue returns.
func (l *Log) Enqueue(ctx context.Context, e audit.Entry, hook Hook) error {
	if l.signer == nil {
		return errors.New("audit log opened read-only")
	}
	l.brokenMu.Lock()
	broken := l.broken
	l.brokenMu.Unlock()
	if broken != nil {
		return fmt.Errorf("an earlier batched audit commit failed, so nothing more is accepted: %w", broken)
	}
	if err := l.refusing(); err != nil {
		return err
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = l.opts.Now()
	}
	p := &pending{ctx: context.WithoutCancel(ctx), entry: e, hook: hook, done: make(chan result, 1), queued: true}
	l.closing.RLock()
	defer l.closing.RUnlock()
	if l.closed {
		return ErrClosed
	}
	l.queued.Add(1)
	select {
	case l.appends <- p:
		return nil
	case <-ctx.Done():
		l.queued.Add(-1)
		return ctx.Err()
	}
}

func (l *Log) commitLoop() {
	defer l.wg.Done()
	for {
		var first *pending
		select {
		case first = <-l.appends:
		case <-l.done:
			// Drain what was queued before Close.
			for {
				select {
				case p := <-l.appends:
					l.commit([]*pending{p})
				default:
					return
				}
			}
		}
		batch := []*pending{first}
		var window <-chan time.Time
		var timer *time.Timer
		if first.queued && l.opts.BatchWindow > 0 {
			timer = time.NewTimer(l.opts.BatchWindow)
			window = timer.C
		}
	fill:
		for len(batch) < l.opts.MaxBatch {
			if window == nil {
				select {
				case p := <-l.appends:
					batch = append(batch, p)
				default:
					break fill
				}
				continue
			}
			// Relaxed mode: keep collecting until the window ends, or
			// someone waits for a commit (Append), or shutdown.
			select {
			case p := <-l.appends:
				batch = append(batch, p)
				if !p.queued {
					break fill
				}
			case <-window:
				break fill
			case <-l.done:
				break fill
			}
		}
		if timer != nil {
			timer.Stop()
		}
		l.commit(batch)
	}
}

// The statements of an append, prepared once per process
// (state.PrepareOnOpen).
const (
	sizeQuery        = `SELECT coalesce(max(seq) + 1, 0) FROM audit_entries`
	checkpointQuery  = `INSERT INTO audit_checkpoint(id, size, note) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET size = excluded.size, note = excluded.note`
	historyQuery     = `INSERT INTO audit_checkpoints(size, note) VALUES (?, ?)`
	savepointQuery   = `SAVEPOINT entry`
	rollbackToQuery  = `ROLLBACK TO entry`
	releaseQuery     = `RELEASE entry`
	insertHashQuery  = `INSERT INTO audit_hashes(idx, hash) VALUES (?, ?)`
	insertEntryQuery = `INSERT INTO audit_entries(seq, entry, ts, agent, action, tool, result) VALUES (?, ?, ?, ?, ?, ?, ?)`
)

func init() {
	state.PrepareOnOpen(sizeQuery, checkpointQuery, historyQuery, savepointQuery, rollbackToQuery, releaseQuery, insertHashQuery, insertEntryQuery)
}

// stmts are the statements of one commit, bound to its transaction; they
// were prepared once per process: with modernc.org/sqlite, preparing
// dominates a small insert.
type stmts struct {
	tx                                                *sql.Tx
	savepoint, rollbackTo, release, insHash, insEntry *sql.Stmt
}

func prepare(ctx context.Context, db *state.DB, tx *sql.Tx) (*stmts, error) {
	st := stmts{tx: tx}
	for _, p := range []struct {
		s **sql.Stmt
		q string
	}{
		{&st.savepoint, savepointQuery},
		{&st.rollbackTo, rollbackToQuery},
		{&st.release, releaseQuery},
		{&st.insHash, insertHashQuery},
		{&st.insEntry, insertEntryQuery},
	} {
		var err error
		if *p.s, err = db.Prepared(ctx, tx, p.q); err != nil {
			return nil, err
		}
	}
	return &st, nil
}

// commit writes a batch in one transaction. First each entry in turn: its
// hook under a savepoint (a failing hook drops only its entry), its bytes,
// its leaf and the stored hashes the writer's frontier computes for it.
// Then, while the checkpoint over the extended frontier is signed on
// another goroutine, the rows are inserted; the checkpoint is stored last.
// The frontier is adopted only once the transaction committed.
func (l *Log) commit(batch []*pending) {
	began := time.Now()
	written := 0
	results := make([]result, len(batch))
	var afterCommit []func(state.Commit)
	var signed []byte
	var tree audit.Frontier
	var unlockWitness func()
	if l.witness != nil {
		unlockWitness = l.witness.lockFirst()
	}
	var committed state.Commit
	err := l.refusing()
	if err == nil {
		committed, err = l.db.WriteTracked(context.Background(), func(tx *sql.Tx) error {
			ctx := context.Background()
			if err := l.catchUp(ctx, tx); err != nil {
				return err
			}
			st, err := prepare(ctx, l.db, tx)
			if err != nil {
				return fmt.Errorf("preparing the append: %w", err)
			}
			tree = l.tree.f.Clone()
			var rows []leafRow
			afterCommit = afterCommit[:0]
			for i, p := range batch {
				var fns []func(state.Commit)
				var e audit.Entry
				e, rows, err = l.appendOne(context.WithValue(ctx, onCommitKey{}, &fns), st, &tree, p, rows)
				results[i] = result{entry: e, err: err}
				if err == nil {
					afterCommit = append(afterCommit, fns...)
				}
			}
			written = len(rows)
			if len(rows) == 0 {
				return nil
			}
			size := tree.Size()
			cp := audit.Checkpoint{Origin: l.origin, Size: size, Root: tree.Root(), Time: l.opts.Now()}
			type signature struct {
				note []byte
				err  error
			}
			sig := make(chan signature, 1)
			go func() {
				note, err := audit.SignCheckpoint(cp, l.signer)
				sig <- signature{note, err}
			}()
			insertErr := l.insertRows(ctx, st, rows)
			s := <-sig
			if insertErr != nil {
				return insertErr
			}
			if s.err != nil {
				return fmt.Errorf("signing the checkpoint: %w", s.err)
			}
			signed = s.note
			if _, err := l.db.Tx(tx).ExecContext(ctx, checkpointQuery, size, signed); err != nil {
				return fmt.Errorf("storing the checkpoint: %w", err)
			}
			// Every checkpoint is kept in the history: bisecting over
			// them is how verify finds the entry a rehashed tree hides.
			if _, err := l.db.Tx(tx).ExecContext(ctx, historyQuery, size, signed); err != nil {
				return fmt.Errorf("storing the checkpoint history: %w", err)
			}
			return nil
		})
	}
	if err == nil {
		for _, fn := range afterCommit {
			fn(committed)
		}
		l.tree.committed(committed)
	}
	if err == nil && signed != nil {
		l.opts.Metrics.Committed(written, time.Since(began))
		l.committedSize.Store(tree.Size())
		l.tree.f, l.tree.note = tree, signed
		if unlockWitness != nil {
			// Before anyone learns the outcome: a log never has a
			// checkpoint without a witness.
			l.witness.writeFirst(tree.Size(), signed)
		}
	}
	if unlockWitness != nil {
		unlockWitness()
	}
	for i, p := range batch {
		r := results[i]
		if err != nil {
			r = result{err: fmt.Errorf("audit append not committed: %w", err)}
		}
		if p.queued {
			l.queued.Add(-1)
			if r.err != nil {
				l.markBroken(r.err)
			}
		}
		if r.err == nil && signed != nil && i == 0 {
			if l.witness != nil {
				l.witness.offer(tree.Size(), signed)
			}
			for _, s := range l.submitters {
				s.offer(tree.Size(), signed)
			}
		}
		p.done <- r
	}
}

// leafRow is one entry as it will be stored: its bytes and the stored
// hashes it adds to the tree (from index base on).
type leafRow struct {
	e      audit.Entry
	b      []byte
	base   int64
	hashes []tlog.Hash
}

// appendOne runs p's hook and adds p's entry and its follow-ups to tree
// and rows. A failing hook rolls its writes back and leaves tree and rows
// as they were.
func (l *Log) appendOne(ctx context.Context, st *stmts, tree *audit.Frontier, p *pending, rows []leafRow) (audit.Entry, []leafRow, error) {
	if err := p.ctx.Err(); err != nil {
		return audit.Entry{}, rows, err
	}
	if p.hook == nil {
		// Nothing can fail but encoding: no savepoint needed.
		before := tree.Clone()
		e, out, err := l.leaves(ctx, st, tree, p, rows)
		if err != nil {
			*tree = before
			return audit.Entry{}, rows, err
		}
		return e, out, nil
	}
	if _, err := st.savepoint.ExecContext(ctx); err != nil {
		return audit.Entry{}, rows, err
	}
	before := tree.Clone()
	e, out, err := l.leaves(ctx, st, tree, p, rows)
	if err != nil {
		*tree = before
		out = rows
		if _, rerr := st.rollbackTo.ExecContext(ctx); rerr != nil {
			return audit.Entry{}, rows, errors.Join(err, rerr)
		}
	}
	if _, rerr := st.release.ExecContext(ctx); rerr != nil {
		return audit.Entry{}, rows, errors.Join(err, rerr)
	}
	return e, out, err
}

// leaves runs p's hook and encodes its entry and the hook's follow-ups as
// the next leaves.
func (l *Log) leaves(ctx context.Context, st *stmts, tree *audit.Frontier, p *pending, rows []leafRow) (audit.Entry, []leafRow, error) {
	e := p.entry
	seq := tree.Size()
	e.Seq = uint64(seq)
	var followUps []audit.Entry
	if p.hook != nil {
		var err error
		if followUps, err = p.hook(ctx, st.tx, &e); err != nil {
			return audit.Entry{}, rows, err
		}
		e.Seq = uint64(seq) // the hook may not move the entry
	}
	out, err := leaf(tree, e, rows)
	if err != nil {
		return audit.Entry{}, rows, err
	}
	for _, f := range followUps {
		f.Seq = uint64(tree.Size())
		if f.Timestamp.IsZero() {
			f.Timestamp = e.Timestamp
		}
		if out, err = leaf(tree, f, out); err != nil {
			return audit.Entry{}, rows, err
		}
	}
	return e, out, nil
}

// leaf encodes e as the next leaf of tree.
func leaf(tree *audit.Frontier, e audit.Entry, rows []leafRow) ([]leafRow, error) {
	b, err := audit.Marshal(e)
	if err != nil {
		return rows, err
	}
	seq := tree.Size()
	return append(rows, leafRow{e: e, b: b, base: tlog.StoredHashIndex(0, seq), hashes: tree.Append(audit.LeafHash(b), nil)}), nil
}

// insertRows stores the leaves: the entries' bytes, their column copies
// and the stored hashes.
func (l *Log) insertRows(ctx context.Context, st *stmts, rows []leafRow) error {
	for _, r := range rows {
		for i, h := range r.hashes {
			if _, err := st.insHash.ExecContext(ctx, r.base+int64(i), h[:]); err != nil {
				return fmt.Errorf("storing tree hashes: %w", err)
			}
		}
		e := r.e
		if _, err := st.insEntry.ExecContext(ctx, e.Seq, r.b, audit.FormatTimestamp(e.Timestamp), e.Agent, string(e.Action), e.Tool, string(e.Result)); err != nil {
			return fmt.Errorf("storing entry %d: %w", e.Seq, err)
		}
	}
	return nil
}

func (l *Log) markBroken(err error) {
	l.brokenMu.Lock()
	first := l.broken == nil
	if first {
		l.broken = err
	}
	l.brokenMu.Unlock()
	if first && l.opts.OnEnqueuedError != nil {
		l.opts.OnEnqueuedError(err)
	}
}

// QueueDepth is how many enqueued entries (audit.batch_window) wait for
// their commit.
func (l *Log) QueueDepth() int64 { return l.queued.Load() }

// WitnessLag is how many entries this process committed that the witness
// copy does not cover yet (0 without a witness).
func (l *Log) WitnessLag() int64 {
	if l.witness == nil {
		return 0
	}
	return max(0, l.committedSize.Load()-l.witnessedSize.Load())
}

// Failure is why the log refuses appends, if it does: it is latched
// tampered (ErrTampered, a TamperedError), or a batched commit failed.
func (l *Log) Failure() error {
	if err := l.refusing(); err != nil {
		return err
	}
	l.brokenMu.Lock()
	defer l.brokenMu.Unlock()
	return l.broken
}

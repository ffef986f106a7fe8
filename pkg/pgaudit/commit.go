package pgaudit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

type pending struct {
	ctx   context.Context
	entry audit.Entry
	hook  Hook
	done  chan result
}

// Hook runs inside the transaction that appends e, after the tree is
// locked and before e is encoded, as pkg/auditlog's Hook does on SQLite:
// the trust update of a call commits or fails together with its entry, may
// fill in e (the trust score after the call), and returns entries to
// append right after e. An error rolls back
// what it wrote and fails this append only.
type Hook func(ctx context.Context, tx pgx.Tx, e *audit.Entry) (followUps []audit.Entry, err error)

type result struct {
	entry audit.Entry
	err   error
	// onCommit are what the entry's hook registered (OnCommit).
	onCommit []func()
}

// OnCommit registers fn to run once the transaction holding the entry
// whose Hook was given ctx has committed, before Append returns (a metric
// counting what the hook did, say). fn does not run if the entry is rolled
// back or the commit fails. It reports whether ctx is a hook's.
func OnCommit(ctx context.Context, fn func()) bool {
	fns, ok := ctx.Value(onCommitKey{}).(*[]func())
	if ok {
		*fns = append(*fns, fn)
	}
	return ok
}

type onCommitKey struct{}

// commitLoop is the process's one committer: it takes what is queued,
// up to MaxBatch, and commits it together while later appends queue.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	for {
		var first *pending
		select {
		case first = <-s.appends:
		case <-s.done:
			for {
				select {
				case p := <-s.appends:
					s.commit([]*pending{p})
				default:
					return
				}
			}
		}
		batch := []*pending{first}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case p := <-s.appends:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// rows are a batch's entries as stored, column by column (unnest).
type rows struct {
	seq                             []int64
	entry, leaf                     [][]byte
	ts, agent, action, tool, result []string
	hashIdx                         []int64
	hashes                          [][]byte
}

// commit writes a batch in one transaction: lock the tree row, catch up
// with what other replicas appended, add the entries to a copy of the
// frontier, sign its root, and send every insert and the new tree row in
// one round trip. The frontier is adopted only once the commit is
// acknowledged.
//
// The first attempt runs the hooks without savepoints (two round trips
// fewer per entry while the tree row is locked); only if a hook fails,
// which aborts the transaction, is the batch written again with each hook
// under a savepoint, so that the failing one drops only its own entry.
func (s *Store) commit(batch []*pending) {
	began := time.Now()
	results := make([]result, len(batch))
	tree, signed, n, err := s.write(batch, results, false)
	if errors.Is(err, errHookFailed) {
		results = make([]result, len(batch))
		tree, signed, n, err = s.write(batch, results, true)
	}
	if err == nil && n > 0 {
		s.tree, s.note = tree, signed
		s.commits.Add(1)
		s.entries.Add(int64(n))
		s.opts.Metrics.Committed(n, time.Since(began))
	}
	for i, p := range batch {
		r := results[i]
		if err != nil {
			r = result{err: fmt.Errorf("audit append not committed: %w", err)}
		}
		if r.err == nil {
			for _, fn := range r.onCommit {
				fn()
			}
		}
		p.done <- r
	}
}

// errHookFailed: a hook run without a savepoint failed, so the
// transaction is aborted and the batch must be written again with
// savepoints.
var errHookFailed = errors.New("an audit hook failed outside a savepoint")

// write commits batch, filling in results; it returns the new frontier,
// its signed checkpoint and how many entries were committed. Without
// savepoints, a failing hook fails the whole attempt with errHookFailed.
func (s *Store) write(batch []*pending, results []result, savepoints bool) (audit.Frontier, []byte, int, error) {
	if err := s.refusing(); err != nil {
		return audit.Frontier{}, nil, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CommitTimeout)
	defer cancel()
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return audit.Frontier{}, nil, 0, fmt.Errorf("state database %s: starting a write: %w", s.db.Name, err)
	}
	defer tx.Rollback(context.Background())

	var size int64
	var root, stored []byte
	if err := tx.QueryRow(ctx, `SELECT size, root, note FROM audit_tree_state WHERE id = 1 FOR UPDATE`).Scan(&size, &root, &stored); err != nil {
		return audit.Frontier{}, nil, 0, fmt.Errorf("locking the audit tree: %w", err)
	}
	tree, err := s.catchUp(ctx, tx, size, stored)
	if err != nil {
		return audit.Frontier{}, nil, 0, err
	}
	var r rows
	for i, p := range batch {
		if err := p.ctx.Err(); err != nil {
			results[i] = result{err: err}
			continue
		}
		var onCommit []func()
		e, err := s.appendOne(context.WithValue(ctx, onCommitKey{}, &onCommit), tx, &tree, &r, p, savepoints)
		if err != nil {
			if !savepoints && p.hook != nil {
				return audit.Frontier{}, nil, 0, errHookFailed
			}
			if ctx.Err() != nil {
				// The transaction is gone with the deadline: nothing of
				// the batch can commit.
				return audit.Frontier{}, nil, 0, err
			}
			results[i] = result{err: err}
			continue
		}
		results[i] = result{entry: e, onCommit: onCommit}
	}
	if len(r.seq) == 0 {
		return audit.Frontier{}, nil, 0, nil
	}
	cp := audit.Checkpoint{Origin: s.origin, Size: tree.Size(), Root: tree.Root(), Time: s.opts.Now()}
	signed, err := audit.SignCheckpoint(cp, s.signer)
	if err != nil {
		return audit.Frontier{}, nil, 0, fmt.Errorf("signing the checkpoint: %w", err)
	}
	var b pgx.Batch
	b.Queue(`INSERT INTO audit_entries(seq, entry, leaf, ts, agent, action, tool, result)
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])`,
		r.seq, r.entry, r.leaf, r.ts, r.agent, r.action, r.tool, r.result)
	b.Queue(`INSERT INTO audit_hashes(idx, hash) SELECT * FROM unnest($1::bigint[], $2::bytea[])`, r.hashIdx, r.hashes)
	b.Queue(`INSERT INTO audit_checkpoints(size, note) VALUES ($1, $2)`, cp.Size, signed)
	b.Queue(`UPDATE audit_tree_state SET size = $1, root = $2, note = $3 WHERE id = 1`, cp.Size, cp.Root[:], signed)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return audit.Frontier{}, nil, 0, fmt.Errorf("storing %d entries from seq %d: %w", len(r.seq), r.seq[0], err)
	}
	if err := tx.Commit(ctx); err != nil {
		return audit.Frontier{}, nil, 0, fmt.Errorf("state database %s: commit: %w", s.db.Name, err)
	}
	return tree, signed, len(r.seq), nil
}

// appendOne runs p's hook (under a savepoint when savepoints is set) and
// adds p's entry and the hook's follow-ups to tree and r. On error, tree
// and r are unchanged and, under a savepoint, the hook's writes are rolled
// back; without one the transaction is aborted.
func (s *Store) appendOne(ctx context.Context, tx pgx.Tx, tree *audit.Frontier, r *rows, p *pending, savepoints bool) (audit.Entry, error) {
	e := p.entry
	seq := tree.Size()
	e.Seq = uint64(seq)
	if p.hook == nil {
		return e, r.add(tree, e)
	}
	htx := tx
	rollback := func() error { return nil }
	if savepoints {
		sp, err := tx.Begin(ctx) // a savepoint
		if err != nil {
			return audit.Entry{}, fmt.Errorf("audit append: %w", err)
		}
		htx, rollback = sp, func() error { return sp.Rollback(ctx) }
	}
	followUps, err := p.hook(ctx, htx, &e)
	if err != nil {
		return audit.Entry{}, errors.Join(err, rollback())
	}
	e.Seq = uint64(seq) // the hook may not move the entry
	saved, savedRows := tree.Clone(), r.len()
	err = r.add(tree, e)
	for _, f := range followUps {
		if err != nil {
			break
		}
		f.Seq = uint64(tree.Size())
		if f.Timestamp.IsZero() {
			f.Timestamp = e.Timestamp
		}
		err = r.add(tree, f)
	}
	if err != nil {
		*tree = saved
		r.truncate(savedRows)
		return audit.Entry{}, errors.Join(err, rollback())
	}
	if savepoints {
		if err := htx.Commit(ctx); err != nil { // RELEASE SAVEPOINT
			*tree = saved
			r.truncate(savedRows)
			return audit.Entry{}, fmt.Errorf("audit append: %w", err)
		}
	}
	return e, nil
}

// add encodes e (whose Seq is tree's size) as the next leaf of tree.
func (r *rows) add(tree *audit.Frontier, e audit.Entry) error {
	b, err := audit.Marshal(e)
	if err != nil {
		return err
	}
	leaf := audit.LeafHash(b)
	base := tlog.StoredHashIndex(0, tree.Size())
	for j, h := range tree.Append(leaf, nil) {
		r.hashIdx = append(r.hashIdx, base+int64(j))
		r.hashes = append(r.hashes, h[:])
	}
	r.seq = append(r.seq, int64(e.Seq))
	r.entry = append(r.entry, b)
	r.leaf = append(r.leaf, leaf[:])
	r.ts = append(r.ts, audit.FormatTimestamp(e.Timestamp))
	r.agent = append(r.agent, e.Agent)
	r.action = append(r.action, string(e.Action))
	r.tool = append(r.tool, e.Tool)
	r.result = append(r.result, string(e.Result))
	return nil
}

// rowsLen is where rows stand: entries and stored hashes.
type rowsLen struct{ entries, hashes int }

func (r *rows) len() rowsLen { return rowsLen{len(r.seq), len(r.hashIdx)} }

// truncate drops what was added after n.
func (r *rows) truncate(n rowsLen) {
	r.seq, r.entry, r.leaf = r.seq[:n.entries], r.entry[:n.entries], r.leaf[:n.entries]
	r.ts, r.agent, r.action = r.ts[:n.entries], r.agent[:n.entries], r.action[:n.entries]
	r.tool, r.result = r.tool[:n.entries], r.result[:n.entries]
	r.hashIdx, r.hashes = r.hashIdx[:n.hashes], r.hashes[:n.hashes]
}

// catchUp returns the frontier to extend, under the lock on the tree row
// whose size and checkpoint are given. If other replicas appended since
// this writer's last commit, it reads their leaf hashes, extends a copy of
// its own frontier with them, and accepts the result only if it
// reproduces the stored checkpoint's root, signed by a trusted key.
func (s *Store) catchUp(ctx context.Context, tx pgx.Tx, size int64, stored []byte) (audit.Frontier, error) {
	tree := s.tree.Clone()
	n := tree.Size()
	switch {
	case size == n:
		if !bytes.Equal(stored, s.note) {
			return tree, s.refuse(fmt.Errorf("the checkpoint of tree size %d was replaced under a running writer", n))
		}
		return tree, nil
	case size < n:
		return tree, s.refuse(fmt.Errorf("this writer appended up to tree size %d, but the log now has %d entries: entries were deleted or the database rolled back", n, size))
	}
	leaves, err := tx.Query(ctx, `SELECT seq, leaf FROM audit_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq`, n, size)
	if err != nil {
		return tree, fmt.Errorf("reading the entries other writers appended: %w", err)
	}
	var seq int64
	var leaf []byte
	_, err = pgx.ForEachRow(leaves, []any{&seq, &leaf}, func() error {
		if seq != tree.Size() || len(leaf) != tlog.HashSize {
			return errBadLeaf
		}
		tree.Append(tlog.Hash(leaf), nil)
		return nil
	})
	if errors.Is(err, errBadLeaf) || (err == nil && tree.Size() != size) {
		return tree, s.refuse(fmt.Errorf("the entries from seq %d to %d another writer appended are missing or malformed", n, size-1))
	}
	if err != nil {
		return tree, fmt.Errorf("reading the entries other writers appended: %w", err)
	}
	cp, _, err := audit.OpenCheckpoint(stored, s.verifiers)
	var unknown *note.UnknownVerifierError
	if errors.As(err, &unknown) {
		return tree, s.refuse(fmt.Errorf("the checkpoint of tree size %d is signed by key %s, which this replica's identity does not hold: if the identity was rotated (`agentmesh identity rotate`), copy the state directory's identity to this replica and restart it", size, unknown.Name))
	}
	if err != nil {
		return tree, s.refuse(fmt.Errorf("the checkpoint of tree size %d another writer stored: %w", size, err))
	}
	if cp.Origin != s.origin || cp.Size != size || cp.Root != tree.Root() {
		return tree, s.refuse(fmt.Errorf("the tree of %d entries does not reproduce the root signed for it: entries were rewritten", size))
	}
	return tree, nil
}

var errBadLeaf = errors.New("bad leaf")

// openTree reads and checks the tree a new writer starts from: the stored
// hashes at the latest checkpoint's size must reproduce its signed root.
func (s *Store) openTree(ctx context.Context) error {
	tx, err := s.db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("audit log in %s: %w", s.db.Name, err)
	}
	defer tx.Rollback(context.Background())
	var size int64
	var root, stored []byte
	if err := tx.QueryRow(ctx, `SELECT size, root, note FROM audit_tree_state WHERE id = 1`).Scan(&size, &root, &stored); err != nil {
		return fmt.Errorf("audit log in %s: reading the tree: %w", s.db.Name, err)
	}
	if size == 0 {
		return nil
	}
	cp, _, err := audit.OpenCheckpoint(stored, s.verifiers)
	if err != nil {
		return s.refuse(fmt.Errorf("the latest checkpoint: %w", err))
	}
	if cp.Origin != s.origin || cp.Size != size {
		return s.refuse(fmt.Errorf("the latest checkpoint is for %s at tree size %d, not for this log at %d", cp.Origin, cp.Size, size))
	}
	f, err := audit.FrontierAt(size, hashReader{ctx, tx})
	if err != nil {
		return fmt.Errorf("audit log in %s: %w", s.db.Name, err)
	}
	if f.Root() != cp.Root {
		return s.refuse(fmt.Errorf("the stored tree does not reproduce the signed root of tree size %d", size))
	}
	s.tree, s.note = f, stored
	return nil
}

// hashReader reads stored hashes (tlog.HashReader) in a transaction.
type hashReader struct {
	ctx context.Context
	tx  pgx.Tx
}

func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	rs, err := r.tx.Query(r.ctx, `SELECT idx, hash FROM audit_hashes WHERE idx = ANY($1)`, indexes)
	if err != nil {
		return nil, err
	}
	byIdx := make(map[int64]tlog.Hash, len(indexes))
	var idx int64
	var h []byte
	if _, err := pgx.ForEachRow(rs, []any{&idx, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("stored hash %d is %d bytes", idx, len(h))
		}
		byIdx[idx] = tlog.Hash(h)
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		var ok bool
		if out[i], ok = byIdx[x]; !ok {
			return nil, fmt.Errorf("stored hash %d is missing", x)
		}
	}
	return out, nil
}

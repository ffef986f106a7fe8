package auditlog

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Verification reads the log at the speed of its slowest part rather than
// of their sum: one goroutine scans audit_entries, others decode each entry
// canonically, hash it and compare its column copies (audit.Decoded), and,
// when a second read transaction provably sees the same snapshot (twin),
// another goroutine streams audit_hashes from it while the replay, in
// order on the caller's goroutine, extends the tree and compares.

// scanBatch is how many rows a decoding goroutine takes at a time.
const scanBatch = 256

type scanRow struct {
	raw  []byte
	cols [5]string
}

type decodeBatch struct {
	rows []scanRow
	out  []audit.Decoded
	err  error
	done chan struct{}
}

// decodedEntries yields the entries from seq from up to the view's size,
// decoded, hashed and with their column copies compared by
// runtime.GOMAXPROCS goroutines, in seq order.
func (l *Log) decodedEntries(v *view, from int64) iter.Seq2[*audit.Decoded, error] {
	return func(yield func(*audit.Decoded, error) bool) {
		ctx, cancel := context.WithCancel(v.ctx)
		work := make(chan *decodeBatch, 4)
		ordered := make(chan *decodeBatch, 8)
		var wg sync.WaitGroup
		for range max(1, runtime.GOMAXPROCS(0)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					decodeRows(b)
					close(b.done)
				}
			}()
		}
		go scanEntries(ctx, v.tx, from, v.size, work, ordered)
		defer func() {
			cancel()
			for range ordered { // let the scanner see the cancellation and stop
			}
			wg.Wait()
		}()
		for b := range ordered {
			<-b.done
			if b.err != nil {
				yield(nil, b.err)
				return
			}
			for i := range b.out {
				if !yield(&b.out[i], nil) {
					return
				}
			}
		}
	}
}

// scanEntries reads rows in seq order into batches, each sent to work (to
// be decoded) and then to ordered (to be replayed in order). A read error
// ends the stream with a batch carrying it.
func scanEntries(ctx context.Context, tx *sql.Tx, from, to int64, work, ordered chan<- *decodeBatch) {
	defer close(ordered)
	defer close(work)
	send := func(b *decodeBatch) bool {
		if b.err == nil {
			select {
			case work <- b:
			case <-ctx.Done():
				return false
			}
		} else {
			close(b.done)
		}
		select {
		case ordered <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	fail := func(err error) { send(&decodeBatch{err: err, done: make(chan struct{})}) }
	rows, err := tx.QueryContext(ctx, `SELECT entry, ts, agent, action, tool, result FROM audit_entries WHERE seq >= ? AND seq < ? ORDER BY seq`, from, to)
	if err != nil {
		fail(err)
		return
	}
	defer rows.Close()
	b := &decodeBatch{rows: make([]scanRow, 0, scanBatch), done: make(chan struct{})}
	for rows.Next() {
		var r scanRow
		if err := rows.Scan(&r.raw, &r.cols[0], &r.cols[1], &r.cols[2], &r.cols[3], &r.cols[4]); err != nil {
			fail(err)
			return
		}
		b.rows = append(b.rows, r)
		if len(b.rows) == scanBatch {
			if !send(b) {
				return
			}
			b = &decodeBatch{rows: make([]scanRow, 0, scanBatch), done: make(chan struct{})}
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() == nil {
			fail(err)
		}
		return
	}
	if len(b.rows) > 0 {
		send(b)
	}
}

func decodeRows(b *decodeBatch) {
	b.out = make([]audit.Decoded, len(b.rows))
	var ts []byte
	for i := range b.rows {
		r := &b.rows[i]
		d := &b.out[i]
		*d = audit.DecodeEntry(r.raw)
		if d.Err == nil {
			ts = audit.AppendTimestamp(ts[:0], d.Entry.Timestamp)
			d.Inspected, d.HasInspected = columnsDiffer(d.Entry, string(ts), &r.cols), true
		}
	}
}

// columnsDiffer compares a row's indexed column copies with its entry,
// whose canonical timestamp is ts.
func columnsDiffer(e audit.Entry, ts string, cols *[5]string) error {
	if cols[0] == ts && cols[1] == e.Agent && cols[2] == string(e.Action) && cols[3] == e.Tool && cols[4] == string(e.Result) {
		return nil
	}
	return checkColumns(int64(e.Seq), e, *cols)
}

// twin begins a second read transaction that provably sees v's snapshot:
// the database's change token did not move from before v's first read to
// after the twin's (WAL snapshots are taken at the first read). ok is
// false when that cannot be shown (a commit came in between), and the
// caller reads everything from v alone.
func (v *view) twin() (tx *sql.Tx, ok bool) {
	if !v.snapshotKnown || noTwin {
		return nil, false
	}
	tx, err := v.l.db.Reader().BeginTx(v.ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false
	}
	var n int64
	err = tx.QueryRowContext(v.ctx, `SELECT count(*) FROM audit_checkpoint`).Scan(&n)
	if after, tokOK := v.l.db.ChangeToken(); err != nil || !tokOK || after != v.snapshot {
		tx.Rollback()
		return nil, false
	}
	twins.Add(1)
	return tx, true
}

// noTwin (tests) makes every verification read from one transaction;
// twins counts the twins taken.
var (
	noTwin bool
	twins  atomic.Uint64
)

// hashStream serves tlog stored hashes in index order from a goroutine
// reading audit_hashes on its own transaction (the twin), so that the
// replay does not wait for SQLite. Requests that do not continue the
// stream (a proof, a root at some size) are answered by fallback.
type hashStream struct {
	chunks   <-chan hashChunk
	cur      hashChunk
	next     int64 // index of the next hash the stream hands out
	end      int64 // the stream's end (exclusive)
	fallback tlog.HashReader
	err      error
}

type hashChunk struct {
	first  int64
	hashes []tlog.Hash
	err    error
}

const hashChunkSize = 4096

// streamHashes starts reading the stored hashes of indexes [start, end)
// from tx, until ctx ends.
func streamHashes(ctx context.Context, tx *sql.Tx, start, end int64, fallback tlog.HashReader) *hashStream {
	ch := make(chan hashChunk, 4)
	go func() {
		defer close(ch)
		r := hashReader{ctx: ctx, q: tx}
		for first := start; first < end; first += hashChunkSize {
			hs, err := r.readRange(first, min(hashChunkSize, end-first))
			select {
			case ch <- hashChunk{first: first, hashes: hs, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return &hashStream{chunks: ch, next: start, end: end, fallback: fallback}
}

// ReadHashes implements tlog.HashReader.
func (s *hashStream) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 || indexes[0] != s.next || s.err != nil || !(len(indexes) == 1 || contiguous(indexes)) ||
		indexes[len(indexes)-1] >= s.end {
		return s.fallback.ReadHashes(indexes)
	}
	out := make([]tlog.Hash, 0, len(indexes))
	for len(out) < len(indexes) {
		if off := s.next - s.cur.first; off < int64(len(s.cur.hashes)) && off >= 0 {
			n := min(int64(len(indexes)-len(out)), int64(len(s.cur.hashes))-off)
			out = append(out, s.cur.hashes[off:off+n]...)
			s.next += n
			continue
		}
		c, ok := <-s.chunks
		switch {
		case !ok:
			s.err = fmt.Errorf("reading tree hashes: the stream ended at %d", s.next)
			return nil, s.err
		case c.err != nil:
			s.err = c.err
			return nil, c.err
		case c.first > s.next || c.first+int64(len(c.hashes)) <= s.next:
			s.err = fmt.Errorf("reading tree hashes: the stream is at %d, the replay at %d", c.first, s.next)
			return nil, s.err
		}
		s.cur = c
	}
	return out, nil
}

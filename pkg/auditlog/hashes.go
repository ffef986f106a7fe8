package auditlog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// querier is what both *sql.Tx and *sql.DB offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hashReader serves tlog stored hashes from audit_hashes (tlog.HashReader).
type hashReader struct {
	ctx context.Context
	q   querier
}

// ReadHashes returns the stored hashes at the given indexes, in order.
func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	if contiguous(indexes) {
		return r.readRange(indexes[0], int64(len(indexes)))
	}
	want := make(map[int64][]int, len(indexes))
	args := make([]any, 0, len(indexes))
	for i, idx := range indexes {
		if _, seen := want[idx]; !seen {
			args = append(args, idx)
		}
		want[idx] = append(want[idx], i)
	}
	q := "SELECT idx, hash FROM audit_hashes WHERE idx IN (?" + strings.Repeat(",?", len(args)-1) + ")"
	rows, err := r.q.QueryContext(r.ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tree hashes: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("tree hash %d has %d bytes, want %d", idx, len(h), tlog.HashSize)
		}
		for _, i := range want[idx] {
			copy(out[i][:], h)
			found++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if found != len(indexes) {
		return nil, fmt.Errorf("tree hashes missing: found %d of %d (the audit_hashes table was truncated or edited)", found, len(indexes))
	}
	return out, nil
}

func contiguous(idx []int64) bool {
	for i := 1; i < len(idx); i++ {
		if idx[i] != idx[i-1]+1 {
			return false
		}
	}
	return len(idx) > 1
}

// readRange reads n consecutive stored hashes from first with one range
// scan (verification reads the whole tree in order).
func (r hashReader) readRange(first, n int64) ([]tlog.Hash, error) {
	rows, err := r.q.QueryContext(r.ctx, `SELECT idx, hash FROM audit_hashes WHERE idx >= ? AND idx < ? ORDER BY idx`, first, first+n)
	if err != nil {
		return nil, fmt.Errorf("reading tree hashes: %w", err)
	}
	defer rows.Close()
	out := make([]tlog.Hash, n)
	next := first
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if idx != next || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("tree hash %d is missing or malformed (the audit_hashes table was truncated or edited)", next)
		}
		copy(out[idx-first][:], h)
		next++
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if next != first+n {
		return nil, fmt.Errorf("tree hashes missing from %d: found %d of %d (the audit_hashes table was truncated or edited)", next, next-first, n)
	}
	return out, nil
}
